"""What the Usage page reads: the account's ledger, newest first, with filters,
keyset paging, a CSV export, spend per day and the credits about to expire.

Plain Python (no Reflex), read-only: the page state, the CSV route and tests
all call these with an open session.

Ordering and paging (decision): rows are listed newest first by
``(created_at, id)``; ``id`` breaks ties between rows written in the same
instant. Paging is keyset: a cursor is a ledger entry id; the next page holds
the rows strictly older than that entry (``(created_at, id) < cursor``),
never ``OFFSET``, so page 2,000 costs what page 1 costs. Sorting by time rather
than by id alone lets a date-range filter become an index range on
``ix_ledger_account_created`` / ``ix_ledger_account_action_created`` instead of
a scan from the newest row down. Several action types are read as one index
range each, merged by a UNION ALL in the same statement, for the same reason.

Spend per day (decision): the credits a generation really cost, that is its
debit minus its refund if it had one, counted on the local day the generation
started (a failed generation refunded the next morning leaves nothing on
either day, rather than a charge one day and a negative bar the next).

Dates: the filters' ``date_from``/``date_to`` are calendar days in the user's
time zone (``Account.timezone``), both inclusive; times shown are in that zone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session

from workroom_app.billing import catalog, clock, formatting
from workroom_app.models import ACTION_LABELS, ActionType, CreditGrant, LedgerEntry

__all__ = [
    "UsageError",
    "UsageFilter",
    "UsageRow",
    "UsagePage",
    "ExpiringCredits",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "CSV_HEADER",
    "usage_page",
    "iter_usage_rows",
    "iter_csv",
    "export_csv",
    "spend_by_day",
    "next_expiry",
    "expiry_line",
    "account_timezone",
    "resolve_timezone",
    "format_timestamp",
    "csv_header",
    "format_amount",
    "format_credits",
    "action_label",
    "feature_label",
]

_L = LedgerEntry.__table__
_G = CreditGrant.__table__

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_SPEND_DAYS = 366
# Ledger rows of one CSV export read per query: small enough to keep memory
# flat for 100,000 rows, large enough that the per-query cost does not matter.
CSV_CHUNK = 2000
# Dates before the product existed or past what datetime can shift by a time
# zone are almost certainly typos; refuse them with a message instead of
# failing deep inside datetime arithmetic.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(9998, 12, 31)
_MAX_INPUT_LENGTH = 64

CSV_HEADER = ("entry_id", "date", "time_zone", "action_type", "feature", "amount", "balance_after")

_ALL_ACTIONS = frozenset(a.value for a in ActionType)


class UsageError(ValueError):
    """Bad filter, cursor or time zone; the message is shown to the user as is."""


# ---------------------------------------------------------------- formatting


def action_label(action_type: str) -> str:
    return ACTION_LABELS.get(action_type, action_type.replace("_", " ").capitalize())


def feature_label(feature: str | None) -> str:
    if not feature:
        return ""
    return catalog.feature_labels().get(feature, feature.replace("_", " ").capitalize())


def format_credits(n: int) -> str:
    """1234567 -> "1,234,567"."""
    return f"{n:,}"


def format_amount(n: int) -> str:
    """A signed amount as shown: "+1,000", "−45" (a real minus sign), "0"."""
    if n > 0:
        return f"+{n:,}"
    if n < 0:
        return f"\u2212{-n:,}"
    return "0"


def format_timestamp(dt: datetime, tz: ZoneInfo) -> str:
    """The date and time of a row in the user's zone, the same on screen and in
    the CSV: the app's one date-time format (billing/formatting.py)."""
    return formatting.format_datetime(dt, tz)


def csv_header(tz: ZoneInfo) -> tuple[str, ...]:
    """The CSV's header row; the date column names the zone its times are in."""
    return tuple(f"date ({tz.key})" if name == "date" else name for name in CSV_HEADER)


def resolve_timezone(name: object) -> ZoneInfo:
    """A zoneinfo zone from an IANA name, or a clear error."""
    if isinstance(name, ZoneInfo):
        return name
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_INPUT_LENGTH:
        raise UsageError("Choose a time zone such as Europe/Paris or UTC.")
    name = name.strip()
    # ZoneInfo also accepts file-system-like keys ("../x") and raises various
    # errors for them; the list of known zones is the safe gate.
    if name not in _known_zones():
        raise UsageError(f"Unknown time zone {name!r}: use a name such as Europe/Paris or UTC.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unloadable
        raise UsageError(f"Unknown time zone {name!r}.") from exc


_zones_cache: frozenset[str] | None = None


def _known_zones() -> frozenset[str]:
    global _zones_cache
    if _zones_cache is None:
        _zones_cache = frozenset(available_timezones()) | {"UTC"}
    return _zones_cache


def account_timezone(session: Session, account_id: int) -> ZoneInfo:
    """The account's zone; UTC when the stored name is unusable, so a bad
    setting shows times in UTC instead of breaking the page (formatting.py)."""
    return formatting.account_zone(session, account_id)


# ------------------------------------------------------------------- filters


def _parse_date(value: object, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        raise UsageError(f"The {what} date must be a calendar day (YYYY-MM-DD), not a time.")
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) != 10:
            raise UsageError(f"The {what} date must look like 2026-11-24.")
        try:
            parsed = date.fromisoformat(text)
        except ValueError as exc:
            raise UsageError(
                f"The {what} date {text!r} is not a real date (use YYYY-MM-DD)."
            ) from exc
    else:
        raise UsageError(f"The {what} date must look like 2026-11-24.")
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise UsageError(
            f"The {what} date must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}."
        )
    return parsed


def _parse_choices(values: object, known: Iterable[str], what: str) -> tuple[str, ...]:
    if values is None or values == "":
        return ()
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple | set | frozenset):
        raise UsageError(f"Choose {what}s from the list.")
    known = set(known)
    if len(values) > len(known):
        raise UsageError(f"Choose {what}s from the list.")
    chosen: set[str] = set()
    for value in values:
        if not isinstance(value, str) or len(value) > _MAX_INPUT_LENGTH:
            raise UsageError(f"Choose {what}s from the list.")
        value = value.strip()
        if value not in known:
            raise UsageError(f"Unknown {what} {value!r}.")
        chosen.add(value)
    return tuple(sorted(chosen))


@dataclass(frozen=True)
class UsageFilter:
    """What the user narrowed the log to. Validated on construction, so an
    instance is always safe to query with; empty means "all"."""

    action_types: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None

    def __post_init__(self) -> None:
        actions = _parse_choices(self.action_types, _ALL_ACTIONS, "action type")
        # All of them selected is the same as no filter, and cheaper to read.
        if set(actions) == _ALL_ACTIONS:
            actions = ()
        object.__setattr__(self, "action_types", actions)
        object.__setattr__(
            self, "features", _parse_choices(self.features, catalog.feature_labels(), "feature")
        )
        date_from = _parse_date(self.date_from, "start")
        date_to = _parse_date(self.date_to, "end")
        if date_from and date_to and date_from > date_to:
            raise UsageError("The start date must be on or before the end date.")
        object.__setattr__(self, "date_from", date_from)
        object.__setattr__(self, "date_to", date_to)

    @property
    def is_empty(self) -> bool:
        return not (self.action_types or self.features or self.date_from or self.date_to)

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC: local midnight of date_from to local midnight
        after date_to (DST-correct via zoneinfo)."""
        start = end = None
        if self.date_from:
            start = datetime.combine(self.date_from, time(0), tzinfo=tz).astimezone(UTC)
        if self.date_to:
            end = datetime.combine(self.date_to + timedelta(days=1), time(0), tzinfo=tz).astimezone(
                UTC
            )
        return start, end


NO_FILTER = UsageFilter()


# ---------------------------------------------------------------------- rows


@dataclass(frozen=True)
class UsageRow:
    id: int
    created_at: datetime  # aware UTC
    action_type: str
    feature: str | None
    amount: int
    balance_after: int

    @property
    def sort_key(self) -> tuple[datetime, int]:
        return (self.created_at, self.id)

    def as_csv(self, tz: ZoneInfo) -> tuple[object, ...]:
        return (
            self.id,
            format_timestamp(self.created_at, tz),
            tz.key,
            action_label(self.action_type),
            feature_label(self.feature),
            self.amount,
            self.balance_after,
        )


@dataclass(frozen=True)
class UsagePage:
    rows: list[UsageRow]
    # Cursor for the older page (pass as before_id), None on the last page.
    next_cursor: int | None
    # Cursor for the newer page (pass as after_id), None on the newest page.
    prev_cursor: int | None
    # More (older) rows exist after this page.
    has_more: bool
    tz: ZoneInfo = field(default=ZoneInfo("UTC"), compare=False)

    @property
    def has_newer(self) -> bool:
        return self.prev_cursor is not None


_COLUMNS = (
    _L.c.id,
    _L.c.created_at,
    _L.c.action_type,
    _L.c.feature,
    _L.c.amount,
    _L.c.balance_after,
)


def _to_row(r: Sequence[Any]) -> UsageRow:
    created = r[1]
    if created.tzinfo is None:  # Core selects skip the column type on some dialects
        created = created.replace(tzinfo=UTC)
    return UsageRow(int(r[0]), created.astimezone(UTC), r[2], r[3], int(r[4]), int(r[5]))


def _check_account_id(account_id: object) -> int:
    if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id <= 0:
        raise UsageError("Sign in to see your usage.")
    return account_id


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise UsageError("The page size must be a whole number.")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise UsageError(f"The page size must be between 1 and {MAX_PAGE_SIZE}.")
    return limit


def _check_cursor(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise UsageError("That page link is not valid: go back to the newest entries.")
    return value


def _fetch(
    session: Session,
    account_id: int,
    filters: UsageFilter,
    bounds: tuple[datetime | None, datetime | None],
    *,
    pivot: tuple[datetime, int] | None,
    older: bool,
    limit: int,
) -> list[UsageRow]:
    """Up to `limit` filtered rows on one side of `pivot`, in display order
    when `older` (newest first), oldest first otherwise."""
    start, end = bounds
    base = [_L.c.account_id == account_id]
    if start is not None:
        base.append(_L.c.created_at >= start)
    if end is not None:
        base.append(_L.c.created_at < end)
    if filters.features:
        base.append(_L.c.feature.in_(filters.features))
    if pivot is not None:
        at, pid = pivot
        if older:
            # The first term is the index range; the second only trims ties.
            base.append(_L.c.created_at <= at)
            base.append(or_(_L.c.created_at < at, _L.c.id < pid))
        else:
            base.append(_L.c.created_at >= at)
            base.append(or_(_L.c.created_at > at, _L.c.id > pid))
    if older:
        order = (_L.c.created_at.desc(), _L.c.id.desc())
    else:
        order = (_L.c.created_at.asc(), _L.c.id.asc())

    def part(extra: list[ColumnElement[bool]]) -> Select[Any]:
        return select(*_COLUMNS).where(and_(*base, *extra)).order_by(*order).limit(limit)

    if len(filters.action_types) <= 1:
        extra = [_L.c.action_type == filters.action_types[0]] if filters.action_types else []
        stmt = part(extra)
    else:
        # One ordered index range per action type, merged in one statement: an
        # IN list would make the database sort every matching row before it
        # could apply the LIMIT.
        parts = [
            part([_L.c.action_type == a]).subquery(f"p{i}")
            for i, a in enumerate(filters.action_types)
        ]
        merged = union_all(*[select(*p.c) for p in parts]).subquery("merged")
        if older:
            merged_order = (merged.c.created_at.desc(), merged.c.id.desc())
        else:
            merged_order = (merged.c.created_at.asc(), merged.c.id.asc())
        stmt = select(*merged.c).order_by(*merged_order).limit(limit)
    return [_to_row(r) for r in session.connection().execute(stmt)]


def _pivot(session: Session, account_id: int, entry_id: int) -> tuple[datetime, int]:
    """The sort key of a cursor entry, which must be this account's own row."""
    r = (
        session.connection()
        .execute(select(_L.c.created_at).where(_L.c.id == entry_id, _L.c.account_id == account_id))
        .first()
    )
    if r is None:
        # Same message whether the id is unknown or another account's.
        raise UsageError("That page link is not valid: go back to the newest entries.")
    created = r[0] if r[0].tzinfo else r[0].replace(tzinfo=UTC)
    return (created.astimezone(UTC), entry_id)


def cursor_for_entry(session: Session, account_id: int, entry_id: object) -> int | None:
    """For a link to one row (/usage?entry=N, e.g. a failed job's Refund row): the id of the row
    just newer than N, so the page before it starts with N; None when N is the newest row.
    UsageError when N is not a number or not this account's row (the same message either way)."""
    if isinstance(entry_id, str) and entry_id.isdigit() and len(entry_id) <= 18:
        entry_id = int(entry_id)
    entry_id = _check_cursor(entry_id)
    if entry_id is None:
        return None
    created, eid = _pivot(session, account_id, entry_id)
    row = (
        session.connection()
        .execute(
            select(_L.c.id)
            .where(
                _L.c.account_id == account_id,
                or_(_L.c.created_at > created, and_(_L.c.created_at == created, _L.c.id > eid)),
            )
            .order_by(_L.c.created_at, _L.c.id)
            .limit(1)
        )
        .first()
    )
    return None if row is None else row[0]


def usage_page(
    session: Session,
    account_id: int,
    *,
    filters: UsageFilter | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    tz: ZoneInfo | str | None = None,
) -> UsagePage:
    """One page of the account's ledger, newest first.

    No cursor: the newest rows. ``before_id``: the rows older than that entry
    (the "Older" button, from ``next_cursor``). ``after_id``: the rows newer than
    it (the "Newer" button, from ``prev_cursor``). Filter dates are read in
    ``tz`` (default: the account's zone).
    """
    account_id = _check_account_id(account_id)
    filters = NO_FILTER if filters is None else filters
    if not isinstance(filters, UsageFilter):
        raise UsageError("Bad filters.")
    limit = _check_limit(limit)
    before_id = _check_cursor(before_id)
    after_id = _check_cursor(after_id)
    if before_id is not None and after_id is not None:
        raise UsageError("That page link is not valid: go back to the newest entries.")
    zone = account_timezone(session, account_id) if tz is None else resolve_timezone(tz)
    bounds = filters.utc_bounds(zone)

    if after_id is not None:
        pivot = _pivot(session, account_id, after_id)
        got = _fetch(
            session, account_id, filters, bounds, pivot=pivot, older=False, limit=limit + 1
        )
        has_newer = len(got) > limit
        rows = list(reversed(got[:limit]))
        # Moving newer from an entry: that entry (or rows older still) is
        # behind us, but only counts if it passes the filters.
        has_older = bool(
            _fetch(
                session,
                account_id,
                filters,
                bounds,
                pivot=rows[-1].sort_key if rows else (pivot[0], pivot[1] + 1),
                older=True,
                limit=1,
            )
        )
    else:
        before = _pivot(session, account_id, before_id) if before_id is not None else None
        got = _fetch(
            session, account_id, filters, bounds, pivot=before, older=True, limit=limit + 1
        )
        has_older = len(got) > limit
        rows = got[:limit]
        if before is None:
            has_newer = False
        else:
            has_newer = bool(
                _fetch(
                    session,
                    account_id,
                    filters,
                    bounds,
                    pivot=rows[0].sort_key if rows else (before[0], before[1] - 1),
                    older=False,
                    limit=1,
                )
            )
    return UsagePage(
        rows=rows,
        next_cursor=rows[-1].id if rows and has_older else None,
        prev_cursor=rows[0].id if rows and has_newer else None,
        has_more=has_older,
        tz=zone,
    )


def iter_usage_rows(
    session: Session,
    account_id: int,
    filters: UsageFilter | None = None,
    tz: ZoneInfo | str | None = None,
    *,
    chunk: int = CSV_CHUNK,
) -> Iterator[UsageRow]:
    """Every filtered row, newest first, read `chunk` rows per query."""
    account_id = _check_account_id(account_id)
    filters = NO_FILTER if filters is None else filters
    zone = account_timezone(session, account_id) if tz is None else resolve_timezone(tz)
    bounds = filters.utc_bounds(zone)
    pivot: tuple[datetime, int] | None = None
    while True:
        got = _fetch(session, account_id, filters, bounds, pivot=pivot, older=True, limit=chunk)
        yield from got
        if len(got) < chunk:
            return
        pivot = got[-1].sort_key


def iter_csv(
    session: Session,
    account_id: int,
    filters: UsageFilter | None = None,
    tz: ZoneInfo | str | None = None,
    *,
    chunk: int = CSV_CHUNK,
) -> Iterator[str]:
    """The CSV export as text pieces (header first), for streaming responses."""
    account_id = _check_account_id(account_id)
    zone = account_timezone(session, account_id) if tz is None else resolve_timezone(tz)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(csv_header(zone))
    rows = iter_usage_rows(session, account_id, filters, zone, chunk=chunk)
    for n, row in enumerate(rows, start=1):
        writer.writerow(row.as_csv(zone))
        if n % chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def export_csv(
    session: Session,
    account_id: int,
    filters: UsageFilter | None = None,
    tz: ZoneInfo | str | None = None,
) -> str:
    """Exactly the filtered rows, newest first, as CSV (header + one line per row)."""
    return "".join(iter_csv(session, account_id, filters, tz))


# --------------------------------------------------------------- spend chart


def spend_by_day(
    session: Session,
    account_id: int,
    days: int = 30,
    tz: ZoneInfo | str | None = None,
    *,
    now: datetime | None = None,
) -> list[dict[str, object]]:
    """Credits spent per local day and feature over the last `days` days
    (today included), oldest day first.

    Each item: {"date": "2026-11-24", "label": "Nov 24", <feature>: credits, ...};
    every item carries the same feature keys (those used in the window), zero
    when nothing was spent, so a stacked chart lines up.
    """
    account_id = _check_account_id(account_id)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_SPEND_DAYS:
        raise UsageError(f"Choose between 1 and {MAX_SPEND_DAYS} days.")
    zone = account_timezone(session, account_id) if tz is None else resolve_timezone(tz)
    now = now or clock.now()
    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    window_start = datetime.combine(first_day, time(0), tzinfo=zone).astimezone(UTC)
    conn = session.connection()

    debits = conn.execute(
        select(_L.c.id, _L.c.created_at, _L.c.feature, _L.c.amount).where(
            _L.c.account_id == account_id,
            _L.c.action_type == ActionType.GENERATION.value,
            _L.c.created_at >= window_start,
        )
    ).all()
    # A refund is always written after its debit, so the refunds of debits
    # in the window are all in the window too.
    refunded: dict[str, int] = {}
    for ref_id, amount in conn.execute(
        select(_L.c.reference_id, _L.c.amount).where(
            _L.c.account_id == account_id,
            _L.c.action_type == ActionType.REFUND.value,
            _L.c.created_at >= window_start,
            _L.c.reference_type == "debit",
        )
    ):
        if ref_id is not None:
            refunded[ref_id] = refunded.get(ref_id, 0) + int(amount)

    totals: dict[date, dict[str, int]] = {}
    features: set[str] = set()
    for entry_id, created, feature, amount in debits:
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        day = created.astimezone(zone).date()
        if day < first_day or day > today:
            continue  # future rows (a pinned or advanced clock) are not "spent yet"
        spent = -int(amount) - refunded.get(str(entry_id), 0)
        if spent <= 0:
            continue
        key = feature or "other"
        features.add(key)
        per_day = totals.setdefault(day, {})
        per_day[key] = per_day.get(key, 0) + spent

    known_order = list(catalog.feature_labels())
    ordered = [f for f in known_order if f in features] + sorted(features - set(known_order))
    out: list[dict[str, object]] = []
    for i in range(days):
        day = first_day + timedelta(days=i)
        item: dict[str, object] = {"date": day.isoformat(), "label": formatting.format_day(day)}
        day_spent = totals.get(day, {})
        for f in ordered:
            item[f] = day_spent.get(f, 0)
        out.append(item)
    return out


# ---------------------------------------------------------------- expiry


class ExpiringCredits(NamedTuple):
    credits: int
    expires_at: datetime  # aware UTC


def next_expiry(
    session: Session, account_id: int, *, now: datetime | None = None
) -> ExpiringCredits | None:
    """How many credits expire next, and when: the live grants (credits left,
    not closed) with the soonest future expiry. None when nothing expires."""
    account_id = _check_account_id(account_id)
    now = now or clock.now()
    live = and_(
        _G.c.account_id == account_id,
        _G.c.amount_left > 0,
        _G.c.closed_at.is_(None),
        _G.c.expires_at.is_not(None),
        _G.c.expires_at > now,
    )
    conn = session.connection()
    soonest = conn.execute(select(func.min(_G.c.expires_at)).where(live)).scalar()
    if soonest is None:
        return None
    credits = conn.execute(
        select(func.coalesce(func.sum(_G.c.amount_left), 0)).where(live, _G.c.expires_at == soonest)
    ).scalar()
    if soonest.tzinfo is None:
        soonest = soonest.replace(tzinfo=UTC)
    if not credits:
        return None
    return ExpiringCredits(int(credits), soonest.astimezone(UTC))


def expiry_line(expiring: ExpiringCredits | None, tz: ZoneInfo) -> str:
    """ "1,200 credits expire on Dec 24, 2026 at your next renewal", or "" when none."""
    if expiring is None or expiring.credits <= 0:
        return ""
    local = expiring.expires_at.astimezone(tz)
    noun = "credit expires" if expiring.credits == 1 else "credits expire"
    return f"{format_credits(expiring.credits)} {noun} on {formatting.format_date(local, tz)} at your next renewal"
