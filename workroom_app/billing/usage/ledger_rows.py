"""Usage: the account's ledger rows, newest first: keyset pages (usage_page), the link to one
row (cursor_for_entry), and the CSV export read in chunks. The ordering and paging decision is
in the package docstring (billing/usage/__init__.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, union_all
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session

from workroom_app.billing.usage.display import (
    account_timezone,
    action_label,
    csv_header,
    feature_label,
    format_timestamp,
    resolve_timezone,
)
from workroom_app.billing.usage.filters import NO_FILTER, UsageError, UsageFilter, _check_account_id
from workroom_app.models import LedgerEntry

_L = LedgerEntry.__table__

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Ledger rows of one CSV export read per query: small enough to keep memory
# flat for 100,000 rows, large enough that the per-query cost does not matter.
CSV_CHUNK = 2000


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
