"""Nothing secret reaches the log, whatever fails.

Reflex logs the failing event when an event cannot be processed, and that event carries its
connection's router data: every request header, the Cookie header (our login token) included.
Exceptions can also carry a submitted form (a password, a card number) in their message.

install() puts a record factory in front of every logger (ours, Reflex's, the server's): each
record's message, arguments and traceback are formatted once and passed through redact(), which
removes Cookie / Set-Cookie / Authorization values, our cookie and token-like fields, password
and card fields, and any run of 13-19 digits that passes the Luhn check (a card number).
A factory, not a handler filter, because Reflex configures its own handlers and a filter on a
logger does not see records propagated from its children.
"""

from __future__ import annotations

import logging
import re
import traceback

REDACTED = "[redacted]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Header lines and dict entries: 'cookie': '...', Cookie: ..., "authorization": "Bearer ..."
    (
        re.compile(
            r"""(?i)(['"]?(?:cookie|set-cookie|authorization|proxy-authorization|x-api-key|stripe-signature)['"]?\s*[:=]\s*)(['"])(?:(?!\2).)*\2"""
        ),
        r"\1\2" + REDACTED + r"\2",
    ),
    (
        re.compile(
            r"(?im)^((?:cookie|set-cookie|authorization|proxy-authorization|stripe-signature)\s*:\s*).*$"
        ),
        r"\1" + REDACTED,
    ),
    # Our cookie anywhere (a raw header value, a URL).
    (re.compile(r"(workroom_session=)[^;\s'\",&]*"), r"\1" + REDACTED),
    # Named secret fields in dict reprs, JSON or query strings.
    (
        re.compile(
            r"""(?i)(['"]?(?:password|confirm_password|new_password|token|auth_token|client_token|ticket|secret|card_number|number|cvc|cvv|api_key|session_token)['"]?\s*[:=]\s*)(['"])(?:(?!\2).)*\2"""
        ),
        r"\1\2" + REDACTED + r"\2",
    ),
    (re.compile(r"(?i)([?&](?:token|ticket|t|password)=)[^&\s'\"]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
]
_DIGITS = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return REDACTED if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def redact(text: str) -> str:
    if not text:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _DIGITS.sub(_card, text)


_installed = False
_base_factory = logging.getLogRecordFactory()


def _factory(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001  (a bad format string must not lose the record)
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        # The formatter prints exc_text when set; dropping exc_info keeps a handler that
        # formats the exception itself from printing it unredacted.
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install() -> None:
    """Idempotent: redact every log record created from now on, in this process."""
    global _installed
    if _installed:
        return
    logging.setLogRecordFactory(_factory)
    _installed = True
