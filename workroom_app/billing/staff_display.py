"""How the staff dashboard shows times, plan names and an adjustment it is about to
make. Plain Python; billing/staff.py re-exports every name here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload
from zoneinfo import ZoneInfo

from workroom_app.billing import catalog, formatting


@overload
def _aware(value: datetime) -> datetime: ...


@overload
def _aware(value: None) -> None: ...


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they are UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# ---------------------------------------------------------------- formatting


def format_time(value: datetime | None, tz: ZoneInfo | str | None = None) -> str:
    """The app's one date-time format, followed by the zone's name: staff look
    at other people's accounts, so the zone is always spelled out."""
    value = _aware(value)
    return f"{formatting.format_datetime(value, tz)} {formatting.zone(tz).key}" if value else "—"


def plan_name(plan_key: str) -> str:
    try:
        return catalog.get_catalog().plan(plan_key).name
    except Exception:  # noqa: BLE001  (a plan retired from the catalog still has a name to show)
        return plan_key.replace("_", " ").title()


def describe_adjustment(email: str, amount: int, balance_before: int, balance_after: int) -> str:
    """What the confirmation dialog says, e.g.
    "Add 100 credits to a@b.c: balance 50 → 150"."""
    verb, preposition = ("Add", "to") if amount > 0 else ("Remove", "from")
    unit = "credit" if abs(amount) == 1 else "credits"
    return (
        f"{verb} {abs(amount):,} {unit} {preposition} {email}: "
        f"balance {balance_before:,} \u2192 {balance_after:,}"
    )
