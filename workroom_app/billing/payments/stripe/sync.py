"""Bringing the app's copy of a Stripe subscription (or pack purchase) in line with Stripe.

Shared by the webhooks (billing/stripe_webhooks.py) and the user's own requests
(actions.py): both re-read the object from Stripe, then `reconcile_report` replays the
subscription's invoice history (oldest first) through the subscription engine's record
functions, each keyed on the Stripe invoice id, and copies the subscription's flags."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app.billing import packs, subscriptions
from workroom_app.billing.catalog import CreditPack, get_catalog
from workroom_app.billing.payments.stripe.errors import StripeGatewayError
from workroom_app.billing.payments.stripe.gateway import StripeGateway
from workroom_app.billing.payments.stripe.metadata import META_PLAN, PAID_PLANS
from workroom_app.billing.payments.stripe.views import (
    InvoiceView,
    PackPaymentView,
    SubscriptionView,
)
from workroom_app.billing.subscriptions import PaymentFacts
from workroom_app.db import write_session
from workroom_app.models import Account, Subscription, SubscriptionStatus

log = logging.getLogger("workroom_app.billing.stripe_webhooks")


@dataclass(frozen=True)
class StripeState:
    """A subscription as Stripe has it now, with its invoices oldest first."""

    subscription: SubscriptionView
    invoices: tuple[InvoiceView, ...]
    plans_by_price: dict[str, str]
    # The account the subscription was bought for, as the checkout session says
    # (None when the event was not a checkout one).
    checkout_account_id: int | None = None


@dataclass(frozen=True)
class Nothing:
    """The event needs no change (e.g. an invoice that belongs to no subscription)."""

    reason: str


def fetch_state(
    gateway: StripeGateway, subscription_id: str, *, checkout_account_id: int | None = None
) -> StripeState:
    subscription = gateway.retrieve_subscription(subscription_id)
    invoices = gateway.list_subscription_invoices(subscription_id)
    plans = {gateway.price_id(plan): plan for plan in PAID_PLANS}
    return StripeState(subscription, invoices, plans, checkout_account_id)


@dataclass(frozen=True)
class PackPurchase:
    """A credit pack's Checkout Session (mode payment), re-read from Stripe and paid."""

    payment: PackPaymentView


def fetch_pack_purchase(gateway: StripeGateway, session_id: str) -> PackPurchase | Nothing:
    view = gateway.retrieve_pack_payment(session_id)
    if view.pack_key is None:
        return Nothing("the payment is not a credit pack")
    if not view.paid:
        return Nothing("the credit pack is not paid")
    return PackPurchase(view)


def fetch_checkout(gateway: StripeGateway, session_id: str) -> StripeState | PackPurchase | Nothing:
    """What a completed Checkout Session bought: a pack, or a subscription (re-read)."""
    session = gateway.retrieve_checkout_session(session_id)
    if session.mode == "payment":
        return fetch_pack_purchase(gateway, session.id)
    if session.subscription_id is None or session.status != "complete":
        return Nothing("the checkout session has no paid subscription")
    ref = session.client_reference_id or ""
    return fetch_state(
        gateway,
        session.subscription_id,
        checkout_account_id=int(ref) if ref.isdigit() else None,
    )


def payment_facts(invoice: InvoiceView, *, failed_attempt: bool = False) -> PaymentFacts:
    """A Stripe invoice as the engine's payment record.

    The key is the Stripe invoice id (one local invoice per Stripe invoice,
    backed by the unique index on invoice.idempotency_key); each failed attempt
    on it gets its own key, so Payment History shows every decline."""
    key = (
        f"stripe:{invoice.id}"
        if not failed_attempt
        else f"stripe:{invoice.id}:failed:{invoice.attempt_count}"
    )
    return PaymentFacts(
        ok=invoice.paid and not failed_attempt,
        amount_cents=invoice.amount_paid
        if invoice.paid and not failed_attempt
        else invoice.amount_due,
        idempotency_key=key,
        currency=invoice.currency,
        gateway="stripe",
        gateway_ref=invoice.id,
        card_brand=invoice.card_brand,
        card_last4=invoice.card_last4,
        failure_reason=None if invoice.paid else (invoice.failure_reason or "The payment failed."),
        failure_code=None if invoice.paid else invoice.failure_code,
    )


def local_subscription(session: Session, stripe_subscription_id: str) -> Subscription | None:
    return session.exec(
        select(Subscription).where(Subscription.gateway_subscription_id == stripe_subscription_id)
    ).first()


def _failed_once(invoice: InvoiceView) -> bool:
    """A payment attempt on it failed (it is still unpaid, or was voided unpaid)."""
    return (
        not invoice.paid
        and not invoice.requires_action  # waiting for 3-D Secure is not a failure
        and invoice.attempt_count > 0
        and invoice.status in ("open", "uncollectible", "void")
    )


@dataclass
class ReconcileReport:
    notes: list[str]
    # The engine's answer for each Stripe invoice it applied (or replayed).
    outcomes: dict[str, subscriptions.Outcome]
    # What could not be applied and needs a person (kept on the event row).
    problems: list[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        return "; ".join(self.notes) or "already up to date"


def reconcile_report(session: Session, state: StripeState) -> ReconcileReport:
    """Make the app's copy of one Stripe subscription match what Stripe says.

    The subscription's invoices are replayed oldest first through the engine's
    record functions (the same code the local gateway's payments go through),
    each idempotent on the Stripe invoice id; then the flags are copied. Runs
    inside the caller's transaction; returns a short note of what it did."""
    view = state.subscription
    notes: list[str] = []
    outcomes: dict[str, subscriptions.Outcome] = {}
    problems: list[str] = []
    local = local_subscription(session, view.id)
    for invoice in state.invoices:
        if local is not None and local.status == SubscriptionStatus.ENDED:
            break
        kind = invoice.kind
        if kind == subscriptions.ACTIVATION:
            if local is None and invoice.paid:
                local = _activate(session, state, invoice, notes, outcomes, problems)
            continue
        if local is None:
            continue
        if kind == subscriptions.RENEWAL:
            if invoice.paid:
                start, end = _period(invoice)
                outcome = subscriptions.record_renewal_paid(
                    session,
                    local,
                    period_start=start,
                    period_end=end,
                    payment=payment_facts(invoice),
                )
            elif _failed_once(invoice):
                outcome = subscriptions.record_payment_failed(
                    session,
                    local,
                    payment=payment_facts(invoice, failed_attempt=True),
                    due_at=invoice.period_start,
                    schedule_retries=False,
                )
            else:
                continue
        elif kind == subscriptions.UPGRADE:
            to_plan = invoice.metadata.get(META_PLAN, "")
            if invoice.paid:
                outcome = subscriptions.apply_upgrade(
                    session, local, to_plan, payment=payment_facts(invoice)
                )
            elif _failed_once(invoice):
                outcome = _record_failed_change(session, local, invoice, to_plan)
            else:
                continue
        elif kind == subscriptions.DOWNGRADE:
            to_plan = _invoice_plan(state, invoice)
            if not invoice.paid:
                # A declined downgrade leaves the subscription as it was and its
                # invoice void; the user's request (change_plan below) records
                # the failed payment, under its own key.
                continue
            start, end = _period(invoice)
            outcome = subscriptions.apply_downgrade(
                session,
                local,
                to_plan,
                payment=payment_facts(invoice),
                period_start=start,
                period_end=end,
            )
        else:
            continue
        outcomes[invoice.id] = outcome
        if not outcome.replayed:
            notes.append(f"{outcome.action} {invoice.id}" + ("" if outcome.ok else " failed"))
        local = session.get(Subscription, local.id, populate_existing=True)
    if local is not None and local.status != SubscriptionStatus.ENDED:
        if view.status in ("canceled", "incomplete_expired"):
            subscriptions.end_subscription(
                session,
                local,
                reason="cancelled" if local.cancel_at_period_end else "ended by Stripe",
            )
            notes.append("ended")
        elif subscriptions.set_cancel_at_period_end(session, local, view.cancel_at_period_end):
            notes.append("cancel at period end" if view.cancel_at_period_end else "resumed")
    from workroom_app.billing import stripe_payments  # noqa: PLC0415  (it builds on this module)

    stripe_payments.sync_invoices(session, state)  # invoices waiting for 3-D Secure
    return ReconcileReport(notes, outcomes, problems)


def _invoice_plan(state: StripeState, invoice: InvoiceView) -> str:
    price_id = next((line.price_id for line in invoice.lines if line.price_id), None)
    plan = state.plans_by_price.get(price_id or "")
    if plan is None:
        raise StripeGatewayError(
            f"Invoice {invoice.id} is for a price that is none of our plans ({price_id})."
        )
    return plan


def _activate(
    session: Session,
    state: StripeState,
    invoice: InvoiceView,
    notes: list[str],
    outcomes: dict[str, subscriptions.Outcome],
    problems: list[str],
) -> Subscription | None:
    view = state.subscription
    account_id = view.account_id or state.checkout_account_id
    if account_id is None or session.get(Account, account_id) is None:
        raise StripeGatewayError(f"Subscription {view.id} names no Workroom account.")
    start, end = _period(invoice)
    try:
        outcome = subscriptions.activate_from_gateway(
            session,
            account_id,
            _invoice_plan(state, invoice),
            period_start=start,
            period_end=end,
            payment=payment_facts(invoice),
            gateway_subscription_id=view.id,
            anchor_day=start.day,
        )
    except subscriptions.AlreadySubscribed:
        # Paid twice (two checkout tabs): the account keeps its plan; the extra
        # Stripe subscription needs a refund by staff. Say so loudly, but do not
        # fail the event forever.
        log.error(
            "account %s already has a plan; Stripe subscription %s was not activated",
            account_id,
            view.id,
        )
        problems.append(
            f"Stripe subscription {view.id} NOT activated: account {account_id} already has a plan; "
            f"refund invoice {invoice.id} and cancel it in Stripe"
        )
        return None
    outcomes[invoice.id] = outcome
    notes.append(f"activation {invoice.id}")
    return session.get(Subscription, outcome.subscription_id)


def _period(invoice: InvoiceView) -> tuple[datetime, datetime]:
    """A subscription invoice's billing period (Stripe sets it on every one)."""
    if invoice.period_start is None or invoice.period_end is None:
        raise StripeGatewayError(f"Invoice {invoice.id} has no billing period.")
    return invoice.period_start, invoice.period_end


def _record_failed_change(
    session: Session, local: Subscription, invoice: InvoiceView, to_plan: str
) -> subscriptions.Outcome:
    return subscriptions.record_failed_attempt(
        session,
        local.account_id,
        kind=invoice.kind,
        payment=payment_facts(invoice, failed_attempt=True),
        plan_key=to_plan or None,
        subscription_id=local.id,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        description=invoice.lines[0].description if invoice.lines else None,
    )


def apply_pack_purchase(session: Session, purchase: PackPurchase) -> str | None:
    """Credit a paid pack once (keyed on the Checkout Session id, so every
    delivery, in any order, and the success page's own sync credit it once).
    Returns a note for staff when the payment cannot be credited as sold."""
    view = purchase.payment
    if view.account_id is None or session.get(Account, view.account_id) is None:
        return f"credit pack paid in {view.session.id} for an unknown account: refund it"
    if (
        not view.credits
        or view.price_cents is None
        or view.session.amount_total != view.price_cents
    ):
        return f"credit pack {view.session.id} was paid {view.session.amount_total} cents, not its price: refund it"
    # What was sold is what the session says (we wrote it), even if the
    # catalog changed since the user paid.
    pack_key = view.pack_key or ""  # set: fetch_pack_purchase passes only packs
    listed = get_catalog().pack(pack_key)
    pack = CreditPack(
        key=pack_key,
        label=listed.label
        if listed is not None and listed.credits == view.credits
        else f"{view.credits:,} credits",
        credits=view.credits,
        price_cents=view.price_cents,
    )
    payment = PaymentFacts(
        ok=True,
        amount_cents=view.session.amount_total,
        idempotency_key=f"stripe:{view.session.id}",
        currency=view.session.currency or "usd",
        gateway="stripe",
        gateway_ref=view.session.payment_intent_id,
        card_brand=view.card_brand,
        card_last4=view.card_last4,
    )
    packs.record_paid(session, view.account_id, pack, payment=payment, purchased_at=view.paid_at)
    return None


def sync_subscription(
    engine: Engine, gateway: StripeGateway, stripe_subscription_id: str
) -> ReconcileReport:
    state = fetch_state(gateway, stripe_subscription_id)
    with write_session(engine) as session:
        return reconcile_report(session, state)
