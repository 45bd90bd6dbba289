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

A series read without its days (by_day=False: the generations' counts and
run-time histograms) also keeps monthly sums: once every day of a month is
filled, its rows are summed into '<series>:m' rows (day 'YYYY-MM') under a
month marker, so 12 months of run-time histograms are a few thousand rows,
not 170,000. A read uses the months whose marker its own snapshot sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, insert, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from workroom_app.billing import clock
from workroom_app.db import read_session, write_session
from workroom_app.models import StaffRollup, StaffRollupDay

Row = tuple[str, str, int, int]  # (day 'YYYY-MM-DD', key, bucket, value)
# Raw grouped query for [start, end): rows, plus the days it must not close
# (e.g. days with a job still running); None when every day may be closed.
RawQuery = Callable[[Session, datetime, datetime], tuple[list[Row], set[str]]]

GRACE = timedelta(hours=1)
# A fill this large (a first visit, or a year warmed at once) refreshes PostgreSQL's
# statistics of staff_rollup at once: planned with the old ones (an empty table:
# "1 row"), the next visits sorted 170,000 run-time rows on disk instead of hashing
# them (12-month generations 454 ms p50 → 221 ms measured). Autoanalyze would
# catch up only a minute or more later; the hourly fill of one day stays below this.
ANALYZE_AFTER_ROWS = 10_000

log = logging.getLogger(__name__)


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
        return  # another request filled (some of) these days with the same figures
    if len(values) >= ANALYZE_AFTER_ROWS and engine.dialect.name == "postgresql":
        _refresh_statistics(engine)


def _refresh_statistics(engine: Engine) -> None:
    """ANALYZE staff_rollup (PostgreSQL); a failure (a role that may not) only logs:
    autoanalyze gets there later."""
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE staff_rollup")
    except DBAPIError:
        log.warning("could not ANALYZE staff_rollup", exc_info=True)


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
        months = _months(session, series, first_whole, closed_end, filled) if not by_day else []
        if by_day:
            stored = select(
                StaffRollup.day, StaffRollup.key, StaffRollup.bucket, StaffRollup.value
            ).where(*in_days)
            out.extend((d, k, int(b), int(v)) for d, k, b, v in session.execute(stored))
        else:
            wheres: list[tuple[ColumnElement[bool], ...]] = [in_days]
            if months:
                # Whole closed months from their monthly sums, the other days from theirs:
                # two index range reads (one OR of both was planned as a scan of the table).
                taken = {m[:7] for m in months}
                rest = sorted(d for d in filled if lo <= d < hi and d[:7] not in taken)
                wheres = [
                    (StaffRollup.series == month_series(series), StaffRollup.day.in_(months)),
                    (StaffRollup.series == series, StaffRollup.day.in_(rest)),
                ]
            for where in wheres:
                stored = (
                    select(
                        literal(""),
                        StaffRollup.key,
                        StaffRollup.bucket,
                        func.sum(StaffRollup.value),
                    )
                    .where(*where)
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
        if not by_day:  # the months those days completed: summed now, read from the next visit
            _months(session, series, first_whole, closed_end, filled | (names - keep_open))
    # The open head (a range starting mid-day) and tail (today, and days not settled).
    if start < _midnight(first_whole):
        out.extend(raw(session, start, _midnight(first_whole))[0])
    if _midnight(closed_end) < end:
        out.extend(raw(session, _midnight(closed_end), end)[0])
    return out


def month_series(series: str) -> str:
    """Where a series' closed months are summed (day = 'YYYY-MM')."""
    return f"{series}:m"


def _in_month(month: str) -> ColumnElement[bool]:
    year, mon = int(month[:4]), int(month[5:])
    following = f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"
    return and_(StaffRollup.day >= f"{month}-01", StaffRollup.day < f"{following}-01")


def _months(session: Session, series: str, first: date, end: date, filled: set[str]) -> list[str]:
    """The whole months in [first, end) whose monthly sums are stored, storing those
    of months whose every day was filled before (their rows never change again)
    for the next visit.
    A 12-month read of a run-time histogram then sums a few thousand rows instead
    of 170,000 (docs/benchmarks.md)."""
    whole = []
    d = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    while True:
        following = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
        if following > end:
            break
        whole.append((d, following))
        d = following
    if not whole:
        return []
    names = [m.strftime("%Y-%m") for m, _ in whole]
    stored = set(
        session.execute(
            select(StaffRollupDay.day).where(
                StaffRollupDay.series == month_series(series), StaffRollupDay.day.in_(names)
            )
        ).scalars()
    )
    for (m, following), name in zip(whole, names, strict=True):
        days = {(m + timedelta(days=i)).isoformat() for i in range((following - m).days)}
        if name not in stored and days <= filled:
            _fill_month(session, series, name)
    # Only months whose marker this read transaction saw: their rows came in the same
    # commit. One stored just now (maybe invisible to this snapshot) serves the next visit.
    return [n for n in names if n in stored]


def _fill_month(session: Session, series: str, month: str) -> None:
    """Sum a closed month's day rows into its monthly rows, once (the marker's key)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    year, mon = int(month[:4]), int(month[5:])
    first = date(year, mon, 1)
    length = ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - first).days
    try:
        with write_session(engine) as w:
            # Every day of the month filled (checked here, not trusted from the caller: a
            # fill that lost a race stored none of its days).
            days = w.execute(
                select(func.count())
                .select_from(StaffRollupDay)
                .where(
                    StaffRollupDay.series == series,
                    StaffRollupDay.day >= f"{month}-01",
                    StaffRollupDay.day <= f"{month}-31",
                )
            ).scalar_one()
            if days != length:
                return
            w.add(
                StaffRollupDay(series=month_series(series), day=month, filled_at=datetime.now(UTC))
            )
            w.flush()
            w.execute(
                insert(StaffRollup.__table__).from_select(
                    ["series", "day", "key", "bucket", "value"],
                    select(
                        literal(month_series(series)),
                        literal(month),
                        StaffRollup.key,
                        StaffRollup.bucket,
                        func.sum(StaffRollup.value),
                    )
                    .where(StaffRollup.series == series, _in_month(month))
                    .group_by(StaffRollup.key, StaffRollup.bucket),
                )
            )
    except IntegrityError:
        pass  # another request stored it (the same sums)


WARM_DAYS = 366


def warm(engine: Engine, now: datetime | None = None) -> None:
    """Fill every overview series' closed days of the last year, so no staff member's visit pays
    for the fill. The billing scheduler calls it hourly (generation/worker.py); a run with
    nothing missing costs one marker query per series."""
    from workroom_app.billing import staff_metrics  # noqa: PLC0415  (it imports this module)

    now = now or clock.now()
    with read_session(engine) as session:
        staff_metrics.overview(session, now - timedelta(days=WARM_DAYS), now, now)
