"""Reads of the credits that can still be used: grants with credits left and not past their
expiry (a past-expiry grant is gone whatever happens, even before its Expiry row is written).

They go through the ORM session, so changes pending in the caller's transaction count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, select

from workroom_app.models import CreditGrant


def subscription_credits_left(session: Session, subscription_id: int, now: datetime) -> int:
    """Credits left in the subscription's live grants (what a downgrade burns)."""
    return _live_grants_total(session, CreditGrant.subscription_id == subscription_id, now)


def spendable_balance(session: Session, account_id: int, now: datetime) -> int:
    """The balance that can be spent now (grants past expiry not counted)."""
    return _live_grants_total(session, CreditGrant.account_id == account_id, now)


def _live_grants_total(session: Session, owner: ColumnElement[bool], now: datetime) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(CreditGrant.amount_left), 0)).where(
            owner,
            CreditGrant.amount_left > 0,
            or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > now),
        )
    ).one()
    return int(total)
