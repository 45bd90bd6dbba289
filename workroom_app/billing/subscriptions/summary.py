"""Reading a subscription: what the Subscription page shows, the past-due banner, the
card label."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from workroom_app.billing.payments.cards import BRAND_LABELS
from workroom_app.billing.payments.gateway import CardOnFile
from workroom_app.billing.periods import as_utc
from workroom_app.billing.subscriptions.lookup import (
    _catalog,
    _fmt_date,
    _money,
    default_card,
    get_plan,
    live_subscription,
)
from workroom_app.billing.subscriptions.payment_records import RENEWAL
from workroom_app.models import Invoice, InvoiceStatus, PaymentMethod, SubscriptionStatus


@dataclass(frozen=True)
class SubscriptionSummary:
    """What the Subscription page shows."""

    plan_key: str
    plan_name: str
    status: str  # "free" | "active" | "past_due"
    subscription_id: int | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    next_renewal_date: date | None  # None when not renewing (cancelled, free)
    renewal_amount_cents: int
    cancel_at_period_end: bool
    next_retry_at: datetime | None
    failed_attempts: int
    card: PaymentMethod | None


def summary(session: Session, account_id: int) -> SubscriptionSummary:
    sub = live_subscription(session, account_id)
    card = default_card(session, account_id)
    if sub is None:
        free = _catalog().default_plan
        return SubscriptionSummary(
            plan_key=free.key,
            plan_name=free.name,
            status="free",
            subscription_id=None,
            current_period_start=None,
            current_period_end=None,
            next_renewal_date=None,
            renewal_amount_cents=0,
            cancel_at_period_end=False,
            next_retry_at=None,
            failed_attempts=0,
            card=card,
        )
    plan = get_plan(sub.plan_key)
    end = as_utc(sub.current_period_end)
    return SubscriptionSummary(
        plan_key=plan.key,
        plan_name=plan.name,
        status=sub.status,
        subscription_id=sub.id,
        current_period_start=as_utc(sub.current_period_start),
        current_period_end=end,
        next_renewal_date=None if sub.cancel_at_period_end else end.date(),
        renewal_amount_cents=0 if sub.cancel_at_period_end else plan.price_cents,
        cancel_at_period_end=bool(sub.cancel_at_period_end),
        next_retry_at=as_utc(sub.next_retry_at) if sub.next_retry_at else None,
        failed_attempts=sub.failed_attempts,
        card=card,
    )


@dataclass(frozen=True)
class PastDue:
    """A renewal payment that is failing: what the banner on every page says."""

    plan_name: str
    amount_cents: int
    reason: str
    next_retry_at: datetime | None
    gateway: str

    def message(self) -> str:
        retry = (
            f" We'll try again on {_fmt_date(self.next_retry_at)}."
            if self.next_retry_at is not None
            else ""
        )
        fix = (
            "Replace your card and pay now on the Subscription page to keep your plan."
            if self.gateway == "local"
            else "Update your card with Stripe from the Subscription page; Stripe retries with it."
        )
        return f"Your {self.plan_name} renewal payment of {_money(self.amount_cents)} failed: {self.reason}{retry} {fix}"


def past_due(session: Session, account_id: int) -> PastDue | None:
    sub = live_subscription(session, account_id)
    if sub is None or sub.status != SubscriptionStatus.PAST_DUE:
        return None
    plan = get_plan(sub.plan_key)
    failed = session.exec(
        select(Invoice)
        .where(
            Invoice.subscription_id == sub.id,
            Invoice.kind == RENEWAL,
            Invoice.status == InvoiceStatus.FAILED.value,
        )
        .order_by(Invoice.seq.desc())
    ).first()
    return PastDue(
        plan_name=plan.name,
        amount_cents=failed.amount_cents if failed is not None else plan.price_cents,
        reason=(
            failed.failure_reason
            if failed is not None and failed.failure_reason
            else "The payment failed."
        ),
        next_retry_at=as_utc(sub.next_retry_at) if sub.next_retry_at else None,
        gateway=sub.gateway,
    )


def short_card_label(brand: str | None, last4: str | None) -> str:
    """A card as a payment row shows it ("Visa •••• 4242"); "—" when unknown."""
    if not brand or not last4:
        return "—"
    return f"{BRAND_LABELS.get(brand, brand.title())} •••• {last4}"


def card_label(card: PaymentMethod | CardOnFile | None) -> str:
    if card is None:
        return "No card on file"
    brand = BRAND_LABELS.get(card.brand, card.brand.title())
    return (
        f"{brand} ending in {card.last4} (expires {card.exp_month:02d}/{card.exp_year % 100:02d})"
    )
