"""Usage: the credits about to expire (the soonest expiry of the live grants) and the line
the page shows about them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlmodel import Session

from workroom_app.billing import clock, formatting
from workroom_app.billing.usage.display import format_credits
from workroom_app.billing.usage.filters import _check_account_id
from workroom_app.models import CreditGrant

_G = CreditGrant.__table__


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
