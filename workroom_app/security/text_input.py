"""Text fields never carry control characters.

PostgreSQL refuses NUL in text columns (the insert fails with an internal error) while SQLite
stores it, and other control characters let a name or prompt spoof log lines and emails. So every
text a browser sends is checked once, before any handler runs (state/session_guard.py), and the
billing code checks the fields it stores (defence in depth for the CLI and tests).
Tab, line feed and carriage return stay allowed: prompts and reasons are multi-line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


class ControlCharacterError(ValueError):
    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            f"{field_label(field)} contains a control character. Remove it and try again."
        )


def field_label(name: str) -> str:
    """'display_name' -> 'Display name' (the message names the field as the form does)."""
    words = str(name).replace("-", " ").replace("_", " ").strip() or "A field"
    return words[:1].upper() + words[1:]


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _strings(value: Any, field: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > 6:
        return
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(inner, str(key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            yield from _strings(inner, field, depth + 1)


def check_payload(payload: Any) -> None:
    """Raise ControlCharacterError naming the first field (a form key or argument name) whose
    text holds a control character. Nested forms are walked to a bounded depth."""
    for field, value in _strings(payload, "A field"):
        if _CONTROL.search(value):
            raise ControlCharacterError(field)
