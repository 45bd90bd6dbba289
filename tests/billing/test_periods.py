"""Period arithmetic: same day each month; the 31st (29th, 30th) becomes the last
day of shorter months and returns to the anchor day after (PRODUCT_RULES §5)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest

from workroom_app.billing import periods


def renewal_dates(start: datetime, anchor_day: int, count: int) -> list[datetime]:
    """The next `count` renewal moments after a period that starts at `start`: period_end
    applied again and again, as renewals do."""
    out = []
    current = periods.as_utc(start)
    for _ in range(count):
        current = periods.period_end(current, anchor_day)
        out.append(current)
    return out


def _dates(start: datetime, n: int) -> list[str]:
    return [d.date().isoformat() for d in renewal_dates(start, start.day, n)]


def test_the_31st_becomes_the_last_day_of_shorter_months_and_returns_to_the_31st():
    start = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
    assert _dates(start, 12) == [
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
        "2027-05-31",
        "2027-06-30",
        "2027-07-31",
        "2027-08-31",
        "2027-09-30",
        "2027-10-31",
        "2027-11-30",
        "2027-12-31",
        "2028-01-31",
    ]


def test_leap_year_february_gets_the_29th():
    assert _dates(datetime(2028, 1, 31, tzinfo=UTC), 2) == ["2028-02-29", "2028-03-31"]
    assert _dates(datetime(2028, 1, 30, tzinfo=UTC), 2) == ["2028-02-29", "2028-03-30"]
    assert _dates(datetime(2028, 1, 29, tzinfo=UTC), 2) == ["2028-02-29", "2028-03-29"]
    assert _dates(datetime(2027, 1, 29, tzinfo=UTC), 2) == ["2027-02-28", "2027-03-29"]


def test_a_plan_bought_on_february_29th_renews_on_the_29th_or_the_last_day():
    assert _dates(datetime(2028, 2, 29, tzinfo=UTC), 13) == [
        "2028-03-29",
        "2028-04-29",
        "2028-05-29",
        "2028-06-29",
        "2028-07-29",
        "2028-08-29",
        "2028-09-29",
        "2028-10-29",
        "2028-11-29",
        "2028-12-29",
        "2029-01-29",
        "2029-02-28",
        "2029-03-29",
    ]


def test_century_rule_2100_is_not_a_leap_year():
    assert _dates(datetime(2100, 1, 31, tzinfo=UTC), 1) == ["2100-02-28"]
    assert _dates(datetime(2000, 1, 31, tzinfo=UTC), 1) == ["2000-02-29"]


@pytest.mark.parametrize("anchor", range(1, 32))
def test_every_anchor_day_over_eight_years_lands_on_min_anchor_last_day(anchor):
    # Start in the first month (from 2024) that has this day.
    year, month = 2024, 1
    while calendar.monthrange(year, month)[1] < anchor:
        month += 1
    start = datetime(year, month, anchor, 23, 59, 59, tzinfo=UTC)
    previous = start
    for moment in renewal_dates(start, anchor, 96):
        last = calendar.monthrange(moment.year, moment.month)[1]
        assert moment.day == min(anchor, last)
        # exactly one calendar month later, same time of day
        assert (moment.year * 12 + moment.month) - (previous.year * 12 + previous.month) == 1
        assert (moment.hour, moment.minute, moment.second) == (23, 59, 59)
        assert moment.tzinfo is not None
        previous = moment


def test_first_period_uses_the_checkout_day_as_anchor():
    start, end, anchor = periods.first_period(datetime(2026, 3, 31, 8, 0, tzinfo=UTC))
    assert anchor == 31
    assert end == datetime(2026, 4, 30, 8, 0, tzinfo=UTC)
    assert periods.period_end(end, anchor) == datetime(2026, 5, 31, 8, 0, tzinfo=UTC)


def test_period_containing_skips_months_that_went_by():
    start = datetime(2026, 1, 31, tzinfo=UTC)
    s, e = periods.period_containing(start, 31, datetime(2026, 4, 2, tzinfo=UTC))
    assert (s.date().isoformat(), e.date().isoformat()) == ("2026-03-31", "2026-04-30")
    # on the boundary the new period starts
    s, e = periods.period_containing(start, 31, datetime(2026, 2, 28, tzinfo=UTC))
    assert (s.date().isoformat(), e.date().isoformat()) == ("2026-02-28", "2026-03-31")


def test_naive_datetimes_from_sqlite_are_read_as_utc():
    naive = datetime(2026, 1, 31, 10, 0)
    assert periods.period_end(naive, 31) == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("bad", [0, 32, -1, "31", None, True])
def test_bad_anchor_day_is_refused(bad):
    with pytest.raises(periods.PeriodError):
        periods.period_end(datetime(2026, 1, 1, tzinfo=UTC), bad)
