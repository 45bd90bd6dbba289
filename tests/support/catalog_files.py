"""Catalog files for the tests that check how a bad one is refused: the default file, and
a copy of it with one value changed."""

from __future__ import annotations

from pathlib import Path

from workroom_app.billing import catalog as catalog_module

DEFAULT_FILE = Path(catalog_module.__file__).with_name("catalog.toml")


def write_catalog(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)
