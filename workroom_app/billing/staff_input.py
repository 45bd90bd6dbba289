"""What the staff dashboard accepts: its limits, the errors a refused staff request
raises, and the checks of the ids, amounts, reasons and search text it is sent.

Plain Python; billing/staff.py re-exports every name here.
"""

from __future__ import annotations

import re

MAX_ADJUSTMENT = 1_000_000
MIN_REASON_LENGTH = 5
MAX_REASON_LENGTH = 500
MAX_QUERY_LENGTH = 254
DEFAULT_SEARCH_LIMIT = 20
DEFAULT_LEDGER_LIMIT = 20
MAX_PAGE_LIMIT = 100
DEFAULT_INVOICE_LIMIT = 5
# Ids are database integers; anything longer than this is not one of ours.
_MAX_ID = 2**63 - 1
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# "25", "+25", "-10", "1,000" (what a person types into an amount box).
_AMOUNT_RE = re.compile(r"^([+\-\u2212]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)$")

STAFF_ONLY_MESSAGE = "Only staff members can use the staff dashboard."


class StaffError(Exception):
    """A staff request was refused; the message is shown to the staff member as is."""


class NotAllowed(StaffError, PermissionError):
    """A staff member whose role may not do this (the page hides the control too)."""


class StaffOnly(StaffError, PermissionError):
    """The actor is not (or no longer) a staff member."""

    def __init__(self, message: str = STAFF_ONLY_MESSAGE) -> None:
        super().__init__(message)


# ----------------------------------------------------------------- validation


def check_id(value: object, what: str = "account") -> int:
    """An id from anywhere (an int, or the digits of one); StaffError otherwise."""
    if isinstance(value, bool):
        raise StaffError(f"That {what} was not found.")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            raise StaffError(f"That {what} was not found.")
        value = int(text)
    if not isinstance(value, int) or value <= 0 or value > _MAX_ID:
        raise StaffError(f"That {what} was not found.")
    return value


def parse_amount(value: object) -> int:
    """The adjustment amount: a non-zero whole number within ±MAX_ADJUSTMENT.

    Accepts an int or what a person types ("25", "+25", "-10", "1,000").
    """
    if isinstance(value, bool):
        raise StaffError("Enter the amount as a whole number of credits, like 25 or -10.")
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text:
            raise StaffError(
                "Enter the number of credits to add (or, with a minus sign, to remove)."
            )
        match = _AMOUNT_RE.match(text) if len(text) <= 20 else None
        if match is None:
            raise StaffError("Enter the amount as a whole number of credits, like 25 or -10.")
        sign, digits = match.groups()
        value = int(digits.replace(",", ""))
        if sign in ("-", "\u2212"):
            value = -value
    if not isinstance(value, int):
        raise StaffError("Enter the amount as a whole number of credits, like 25 or -10.")
    if value == 0:
        raise StaffError("The adjustment must add or remove at least one credit.")
    if abs(value) > MAX_ADJUSTMENT:
        raise StaffError(
            f"An adjustment can add or remove at most {MAX_ADJUSTMENT:,} credits at a time."
        )
    return value


def check_reason(value: object) -> str:
    """The written reason every adjustment needs (PRODUCT_RULES §2)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise StaffError("Write the reason for this adjustment.")
    reason = " ".join(value.split())
    if not reason:
        raise StaffError("Write the reason for this adjustment.")
    if len(reason) < MIN_REASON_LENGTH:
        raise StaffError(f"Write a reason of at least {MIN_REASON_LENGTH} characters.")
    if len(reason) > MAX_REASON_LENGTH:
        raise StaffError(f"Keep the reason to at most {MAX_REASON_LENGTH} characters.")
    return reason


def check_request_id(value: object) -> str:
    if not isinstance(value, str) or not _REQUEST_ID_RE.match(value):
        raise StaffError("This adjustment form has expired. Open it again.")
    return value


def _check_limit(limit: object, default: int) -> int:
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise StaffError(f"The page size must be between 1 and {MAX_PAGE_LIMIT}.")
    return limit


def _check_cursor(value: object) -> int | None:
    if value is None:
        return None
    return check_id(value, "page")


def check_query(value: object) -> str:
    """The search text: an email fragment, matched case-insensitively."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StaffError("Search by typing part of an email address.")
    query = value.strip().lower()
    if len(query) > MAX_QUERY_LENGTH:
        raise StaffError(f"Search with at most {MAX_QUERY_LENGTH} characters.")
    return query
