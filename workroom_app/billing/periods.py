"""Billing period arithmetic: a subscription renews on the same day each month.

The day is the subscription's *anchor day* (1..31), not the day of the last
renewal: a plan bought on January 31st renews on February 28th (29th in a leap
year), then on March 31st again. Keeping the anchor separately is what lets the
date return to the 31st after a short month instead of drifting to the 28th.

Renewals keep the time of day of the checkout (all in UTC).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime


class PeriodError(ValueError):
    """A bad anchor day or a naive datetime (a programming error, not user input)."""


def _check_anchor(anchor_day: int) -> int:
    if isinstance(anchor_day, bool) or not isinstance(anchor_day, int) or not 1 <= anchor_day <= 31:
        raise PeriodError(f"anchor day must be 1..31, got {anchor_day!r}")
    return anchor_day


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for aware columns; they are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def day_in_month(year: int, month: int, anchor_day: int) -> int:
    """The anchor day, or the month's last day when the month is shorter."""
    _check_anchor(anchor_day)
    return min(anchor_day, calendar.monthrange(year, month)[1])


def add_months(moment: datetime, months: int, anchor_day: int) -> datetime:
    """`moment` moved by `months` calendar months, landing on the anchor day
    (clamped to the month's length), same time of day."""
    moment = as_utc(moment)
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return moment.replace(year=year, month=month, day=day_in_month(year, month, anchor_day))


def period_end(period_start: datetime, anchor_day: int) -> datetime:
    """Where the period that starts at `period_start` ends (= the next renewal)."""
    return add_months(period_start, 1, anchor_day)


def first_period(start: datetime) -> tuple[datetime, datetime, int]:
    """The first period of a plan bought at `start`: (start, end, anchor day)."""
    start = as_utc(start)
    return start, period_end(start, start.day), start.day


def period_containing(
    period_start: datetime, anchor_day: int, moment: datetime
) -> tuple[datetime, datetime]:
    """Walk forward from a period start (on the anchor) to the period holding `moment`.

    A renewal taken late (the worker was stopped, the demo clock jumped
    months) starts the period the customer is in now rather than charging
    for every month that went by unused.
    """
    start = as_utc(period_start)
    moment = as_utc(moment)
    end = period_end(start, anchor_day)
    while end <= moment:
        start, end = end, period_end(end, anchor_day)
    return start, end
