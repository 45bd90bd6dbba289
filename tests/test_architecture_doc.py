"""docs/architecture.md cannot rot: every path it names in backticks exists, every
`function()` written right after a Python file's path is defined in that file, and every
`test_...` named after a test file is a test in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"

# `some/path.py`, `some/dir/`, `assets/quote.js`, `.ci/run`
PATH = re.compile(r"`((?:\.?[\w-]+/)+(?:[\w.-]+)?)`")
# `file.py` followed by `name()` (and more `name()`s after commas) in the same cell
FILE_AND_NAMES = re.compile(r"`([\w./-]+\.py)`((?:\s*,?\s*`[\w.]+(?:\(\))?`)+)")
NAME = re.compile(r"`([\w.]+)(\(\))?`")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_backticked_path_exists():
    paths = PATH.findall(_text())
    assert len(paths) > 40  # the parser still finds the paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_function_and_test_named_after_a_file_is_in_it():
    checked = 0
    problems = []
    for path, names in FILE_AND_NAMES.findall(_text()):
        source = (ROOT / path).read_text(encoding="utf-8")
        for name, _call in NAME.findall(names):
            leaf = name.rsplit(".", 1)[-1]
            if not re.search(rf"^\s*(async def|def|class) {re.escape(leaf)}\b", source, re.M):
                problems.append(f"{path}: {name}")
            checked += 1
    assert checked > 40  # the parser still finds the names
    assert not problems, f"docs/architecture.md names what these files do not define: {problems}"


def test_every_rule_section_of_the_product_rules_has_a_row():
    table = [line for line in _text().splitlines() if re.match(r"\| [1-6]\. ", line)]
    assert {line[2] for line in table} == set("123456")
