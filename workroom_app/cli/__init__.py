"""The `workroom` command line (see cli/main.py)."""
