"""The balance broken down by where its credits came from, and what expires
next: what the balance's popover in the header shows on every page.

The parts add up to the balance: the balance is the sum of the grants'
credits left (ledger invariant), and every grant has exactly one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from workroom_app.billing import clock
from workroom_app.models import Account, CreditGrant, GrantSource

_G = CreditGrant.__table__

# Source -> the part of the popover it counts in.
PART_OF_SOURCE = {
    GrantSource.SUBSCRIPTION.value: "plan",
    GrantSource.MONTHLY.value: "plan",
    GrantSource.PLAN_CHANGE.value: "plan",
    GrantSource.PACK.value: "packs",
    GrantSource.TRIAL.value: "trial",
    GrantSource.REFUND.value: "refunds",
    GrantSource.STAFF.value: "adjustments",
}
PART_LABELS = {
    "plan": "Plan credits",
    "packs": "Credit packs",
    "trial": "Trial credits",
    "refunds": "Refunds",
    "adjustments": "Adjustments",
}


@dataclass(frozen=True)
class Breakdown:
    parts: dict[str, int]  # part -> credits, every part present (0 when none)
    expiring_credits: int  # credits that expire next (0: nothing expires)
    expiring_on: date | None  # in the account's time zone

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def breakdown(session: Session, account_id: int, *, now: datetime | None = None) -> Breakdown:
    now = now or clock.now()
    conn = session.connection()
    parts = dict.fromkeys(PART_LABELS, 0)
    for source, credits in conn.execute(
        select(_G.c.source, func.sum(_G.c.amount_left))
        .where(_G.c.account_id == account_id, _G.c.amount_left > 0)
        .group_by(_G.c.source)
    ):
        parts[PART_OF_SOURCE.get(source, "adjustments")] += int(credits or 0)
    zone_name = conn.execute(
        select(Account.__table__.c.timezone).where(Account.__table__.c.id == account_id)
    ).scalar()
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except Exception:  # noqa: BLE001  (a bad stored zone shows UTC)
        zone = ZoneInfo("UTC")
    # What expires next: every live grant expiring on the soonest local day.
    upcoming = conn.execute(
        select(_G.c.expires_at, _G.c.amount_left)
        .where(
            _G.c.account_id == account_id,
            _G.c.amount_left > 0,
            _G.c.closed_at.is_(None),
            _G.c.expires_at.is_not(None),
            _G.c.expires_at > now,
        )
        .order_by(_G.c.expires_at)
        .limit(50)
    ).all()
    expiring_credits, expiring_on = 0, None
    for expires_at, left in upcoming:
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=ZoneInfo("UTC"))
        day = expires_at.astimezone(zone).date()
        if expiring_on is None:
            expiring_on = day
        if day != expiring_on:
            break
        expiring_credits += int(left)
    return Breakdown(parts, expiring_credits, expiring_on)
