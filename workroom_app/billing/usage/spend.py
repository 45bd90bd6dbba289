"""Usage: the spend chart, credits spent per local day and feature. The decision on what
counts as spent is in the package docstring (billing/usage/__init__.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from workroom_app.billing import catalog, clock, formatting
from workroom_app.billing.usage.display import account_timezone, resolve_timezone
from workroom_app.billing.usage.filters import UsageError, _check_account_id
from workroom_app.models import ActionType, LedgerEntry

_L = LedgerEntry.__table__

MAX_SPEND_DAYS = 366


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
