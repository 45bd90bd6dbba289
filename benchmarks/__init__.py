"""Benchmarks (run through `workroom bench ...`)."""
