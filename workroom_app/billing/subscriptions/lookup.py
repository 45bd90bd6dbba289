"""Shared reads and checks of the subscription engine: the catalog plan, the account,
its live subscription and card on file, the account lock, money and date text."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from workroom_app.billing import catalog, formatting, invoices
from workroom_app.billing.catalog import Catalog, Plan
from workroom_app.billing.invoice_pdf import money
from workroom_app.billing.subscriptions.errors import (
    NoSubscription,
    NotAPaidPlan,
    SubscriptionError,
    UnknownPlan,
)
from workroom_app.models import Account, PaymentMethod, Subscription, SubscriptionStatus

_LIVE = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)


def _catalog() -> Catalog:
    return catalog.get_catalog()


def _currency() -> str:
    return getattr(_catalog(), "currency", "usd") or "usd"


def get_plan(plan_key: object) -> Plan:
    """The catalog plan, or UnknownPlan (with a user message) for anything else."""
    if not isinstance(plan_key, str) or not plan_key or len(plan_key) > 32:
        raise UnknownPlan(plan_key)
    return _catalog().plan(plan_key)  # UnknownPlan when the catalog has no such plan


def _paid_plan(plan_key: object) -> Plan:
    plan = get_plan(plan_key)
    if not plan.paid:
        lowest = _catalog().lowest_paid_plan
        raise NotAPaidPlan(
            f"{plan.name} is not a paid plan"
            + (f"; {lowest.name} is the lowest paid plan." if lowest else ".")
            + " To go back to Free, cancel auto-renewal."
        )
    return plan


def _check_account_id(account_id: object) -> int:
    if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id <= 0:
        raise SubscriptionError("Unknown account.")
    return account_id


def _money(cents: int) -> str:
    return money(cents, _currency())


def _fmt_date(d: datetime | date, tz: ZoneInfo | str | None = None) -> str:  # None: UTC
    return formatting.format_date(d, tz)


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise SubscriptionError("Unknown account.")
    return account


def live_subscription(session: Session, account_id: int) -> Subscription | None:
    """The account's subscription that is not ended (at most one: a unique index)."""
    return session.exec(
        select(Subscription)
        .where(Subscription.account_id == account_id, Subscription.status.in_(_LIVE))
        .order_by(Subscription.id.desc())
    ).first()


def default_card(session: Session, account_id: int) -> PaymentMethod | None:
    return session.exec(
        select(PaymentMethod)
        .where(
            PaymentMethod.account_id == account_id,
            PaymentMethod.is_default.is_(True),
            PaymentMethod.removed_at.is_(None),
        )
        .order_by(PaymentMethod.id.desc())
    ).first()


def _lock(session: Session, account_id: int) -> None:
    invoices.lock_account(session, account_id)


def _reload(session: Session, sub: Subscription) -> Subscription:
    """Re-read after taking the lock: the caller may hold a stale copy (or one
    from another session, e.g. a webhook handler's)."""
    session.flush()
    fresh = session.get(Subscription, sub.id, populate_existing=True)
    if fresh is None:
        raise NoSubscription("No such subscription.")
    return fresh
