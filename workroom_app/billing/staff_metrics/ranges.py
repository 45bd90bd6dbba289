"""The staff overview's date ranges and what its panels share: the UTC day of a
timestamp, the plan prices, the rollup key separator."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import overload

from sqlalchemy import SQLColumnExpression, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from workroom_app.billing import catalog, staff_rollups

PAID_STATUSES = ("paid", "refunded")
FAILED_JOB_STATUSES = ("failed", "rejected", "timed_out")
DEFAULT_DAYS = 30
MAX_DAYS = 400
TOP_USERS = 10


RawRows = tuple[list[staff_rollups.Row], set[str]]  # staff_rollups.RawQuery's answer


@overload
def _aware(value: datetime) -> datetime: ...


@overload
def _aware(value: None) -> None: ...


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _day(value: datetime) -> str:
    return _aware(value).astimezone(UTC).date().isoformat()


def day_of(session: Session, column: SQLColumnExpression[datetime]) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column, as 'YYYY-MM-DD', computed by
    the database so a panel groups rows there instead of reading them all."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text.
    return func.substr(column, 1, 10)


def default_range(now: datetime, days: int = DEFAULT_DAYS) -> tuple[datetime, datetime]:
    """The last `days` whole UTC days up to and including today."""
    today = now.astimezone(UTC).date()
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return end - timedelta(days=days), end


def parse_range(start_text: object, end_text: object, now: datetime) -> tuple[datetime, datetime]:
    """A range from two YYYY-MM-DD strings (end inclusive); ValueError with a message."""
    if not isinstance(start_text, str) or not isinstance(end_text, str):
        raise ValueError("Enter the dates as YYYY-MM-DD.")
    if not start_text.strip() and not end_text.strip():
        return default_range(now)
    try:
        start = date.fromisoformat(start_text.strip())
        end = date.fromisoformat(end_text.strip())
    except ValueError:
        raise ValueError("Enter the dates as YYYY-MM-DD.") from None
    if end < start:
        raise ValueError("The end date must not be before the start date.")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"Choose at most {MAX_DAYS} days.")
    return (
        datetime.combine(start, datetime.min.time(), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
    )


def plan_prices() -> dict[str, int]:
    """Each plan's monthly price in cents, from today's catalog."""
    return {p.key: p.price_cents for p in catalog.get_catalog().plans}


SEP = "\x1f"  # joins the parts of a rollup key (never in a kind, plan, action or model name)
