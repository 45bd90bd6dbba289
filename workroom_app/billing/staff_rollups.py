"""Closed-day rollups for the staff overview: a panel over 12 months
reads at most one summary row per day and group instead of a million rows.

Why it is correct without touching any write path (the ledger's debit stays
as it is): the rows a series sums never change once their UTC day is over.
- Ledger rows are append-only and their created_at is the clock at insert.
- Invoices are written with their final status (paid or failed); a paid one
  can only become "refunded", and both count as revenue; refunds are their
  own rows (invoice_refund, kept as a live query: they are few).
- A generation job changes until it is final: it is closed once every job of
  its day is terminal, the longest deadline plus the 24 h report window has
  passed, and none of the day's jobs has a report waiting for staff (staff
  accepting one sets the job's refund later).
"Over" is measured against min(clock.now(), real time) minus a grace period
(a transaction that read the clock at 23:59:59 may commit after midnight).
The demo clock only moves forward, so rows it writes ahead of real time
belong to days that are not closed yet; tests that pin the clock backwards
and then write into a day already rolled up would see stale figures (only
tests can do that; a test fills rollups after writing).

A series is one grouped query over the raw rows of [start, end) returning
(day, key, bucket, value) tuples; `read` returns the same tuples for a range:
the stored rows of the closed days that are filled, the grouped query over
the closed days that are missing (then stored: the first visit after a quiet
period pays once), and the grouped query over the open head and tail. Each
fill inserts the (series, day) marker first: its primary key makes a second,
concurrent fill of the same day fail and roll back, never count twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, insert, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from workroom_app.billing import clock
from workroom_app.db import read_session, write_session
from workroom_app.models import StaffRollup, StaffRollupDay

Row = tuple[str, str, int, int]  # (day 'YYYY-MM-DD', key, bucket, value)
# Raw grouped query for [start, end): rows, plus the days it must not close
# (e.g. days with a job still running); None when every day may be closed.
RawQuery = Callable[[Session, datetime, datetime], tuple[list[Row], set[str]]]

GRACE = timedelta(hours=1)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time(), tzinfo=UTC)


def _wall_now() -> datetime:
    return datetime.now(UTC)


def first_open_day(now: datetime, settle: timedelta) -> date:
    """Days before this one are closed for a series that settles after `settle`."""
    return (min(now, _wall_now()) - GRACE - settle).astimezone(UTC).date()


def _fill(session: Session, series: str, rows: list[Row], days: Iterable[str]) -> None:
    """Store the rows of `days` (closed, computed from raw rows) in one write
    transaction; lose quietly to a concurrent fill of the same days."""
    days = sorted(days)
    if not days:
        return
    engine = (
        session.get_bind().engine
    )  # the session's Engine, bound directly or through a Connection
    wanted = set(days)
    try:
        with write_session(engine) as w:
            now = datetime.now(UTC)
            for d in days:
                w.add(StaffRollupDay(series=series, day=d, filled_at=now))
            w.flush()  # the markers first: a concurrent fill fails here
            values = [
                {"series": series, "day": d, "key": k, "bucket": b, "value": v}
                for d, k, b, v in rows
                if d in wanted
            ]
            if values:  # one executemany, not an ORM object per row
                w.execute(insert(StaffRollup.__table__), values)
    except IntegrityError:
        pass  # another request filled (some of) these days with the same figures


def read(
    session: Session,
    series: str,
    raw: RawQuery,
    start: datetime,
    end: datetime,
    now: datetime,
    settle: timedelta = timedelta(0),
    by_day: bool = True,
) -> list[Row]:
    """The series' rows for [start, end). by_day=False: the stored rows are summed
    over their days by the database (day "" ); a panel that needs no days (run
    time histograms: thousands of rows a day) then reads one row per group."""
    first_whole = start.astimezone(UTC).date()
    if _midnight(first_whole) < start:
        first_whole += timedelta(days=1)
    last_whole = end.astimezone(UTC).date()  # exclusive
    closed_end = min(last_whole, first_open_day(now, settle))
    if closed_end <= first_whole:
        return raw(session, start, end)[0]

    lo, hi = first_whole.isoformat(), closed_end.isoformat()
    filled = set(
        session.execute(
            select(StaffRollupDay.day).where(
                StaffRollupDay.series == series, StaffRollupDay.day >= lo, StaffRollupDay.day < hi
            )
        ).scalars()
    )
    out: list[Row] = []
    if filled:
        in_days = (StaffRollup.series == series, StaffRollup.day >= lo, StaffRollup.day < hi)
        if by_day:
            stored = select(
                StaffRollup.day, StaffRollup.key, StaffRollup.bucket, StaffRollup.value
            ).where(*in_days)
        else:
            stored = (
                select(
                    literal(""), StaffRollup.key, StaffRollup.bucket, func.sum(StaffRollup.value)
                )
                .where(*in_days)
                .group_by(StaffRollup.key, StaffRollup.bucket)
            )
        out.extend((d, k, int(b), int(v)) for d, k, b, v in session.execute(stored))
    missing = [first_whole + timedelta(days=i) for i in range((closed_end - first_whole).days)]
    missing = [d for d in missing if d.isoformat() not in filled]
    if missing:
        # One grouped query over the span of the missing days; keep their rows only.
        rows, keep_open = raw(
            session, _midnight(missing[0]), _midnight(missing[-1] + timedelta(days=1))
        )
        names = {d.isoformat() for d in missing}
        out.extend(r for r in rows if r[0] in names)
        _fill(session, series, rows, names - keep_open)
    # The open head (a range starting mid-day) and tail (today, and days not settled).
    if start < _midnight(first_whole):
        out.extend(raw(session, start, _midnight(first_whole))[0])
    if _midnight(closed_end) < end:
        out.extend(raw(session, _midnight(closed_end), end)[0])
    return out


WARM_DAYS = 366


def warm(engine: Engine, now: datetime | None = None) -> None:
    """Fill every overview series' closed days of the last year, so no staff member's visit pays
    for the fill. The billing scheduler calls it hourly (generation/worker.py); a run with
    nothing missing costs one marker query per series."""
    from workroom_app.billing import staff_metrics  # noqa: PLC0415  (it imports this module)

    now = now or clock.now()
    with read_session(engine) as session:
        staff_metrics.overview(session, now - timedelta(days=WARM_DAYS), now, now)
