"""The ledger's argument checks and limits: every operation checks its arguments before it
touches a row, and refuses with a LedgerError that says what is wrong.

Names starting with _ are private to the ledger package."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, overload

from workroom_app.billing.ledger.errors import LedgerError
from workroom_app.models import ActionType

MAX_KEY_LENGTH = 200
# Far more than any real grant or debit; keeps sums well inside 64-bit integers.
MAX_AMOUNT = 10**12

# Which action types each operation may write (PRODUCT_RULES §2).
GRANT_ACTIONS = frozenset(
    {
        ActionType.TRIAL_GRANT,
        ActionType.SUBSCRIPTION_CREDITS,
        ActionType.MONTHLY_CREDITS,
        ActionType.PLAN_CHANGE,
        ActionType.STAFF_ADJUSTMENT,
        ActionType.CREDIT_PACK,
    }
)
DEBIT_ACTIONS = frozenset(
    {ActionType.GENERATION, ActionType.PLAN_CHANGE, ActionType.STAFF_ADJUSTMENT}
)
BURN_ACTIONS = frozenset({ActionType.PLAN_CHANGE, ActionType.EXPIRY})
# Only a generation's debit can be refunded (PRODUCT_RULES §2, "Refund").
REFUNDABLE_ACTIONS = frozenset({ActionType.GENERATION})


def _check_amount(amount: object, what: str = "amount") -> int:
    # bool is an int subclass: True must not silently mean one credit.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LedgerError(f"The {what} must be a whole number of credits.")
    if amount <= 0:
        raise LedgerError(f"The {what} must be more than zero credits.")
    if amount > MAX_AMOUNT:
        raise LedgerError(f"The {what} is too large.")
    return amount


def _check_id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LedgerError(f"The {what} is not valid.")
    return value


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise LedgerError("An idempotency key is required.")
    if len(key) > MAX_KEY_LENGTH:
        raise LedgerError(f"The idempotency key is longer than {MAX_KEY_LENGTH} characters.")
    return key


@overload
def _check_text(value: object, what: str, max_length: int, *, required: Literal[True]) -> str: ...


@overload
def _check_text(value: object, what: str, max_length: int, *, required: bool) -> str | None: ...


def _check_text(value: object, what: str, max_length: int, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise LedgerError(f"The {what} is required." if required else f"The {what} must be text.")
    if len(value) > max_length:
        raise LedgerError(f"The {what} is longer than {max_length} characters.")
    return value


def _check_action(action_type: object, allowed: frozenset[ActionType], operation: str) -> str:
    try:
        if not isinstance(action_type, str):
            raise ValueError(action_type)
        action = ActionType(action_type)
    except ValueError:
        action = None
    if action is None:
        raise LedgerError(f"Unknown action type {action_type!r}.") from None
    if action not in allowed:
        raise LedgerError(f"A {operation} cannot be recorded as {action.value!r}.")
    return action.value


def _check_expiry(expires_at: object, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime) or expires_at.utcoffset() is None:
        raise LedgerError("The expiry must be a date and time with a time zone.")
    if expires_at <= now:
        raise LedgerError("The expiry must be in the future.")
    return expires_at
