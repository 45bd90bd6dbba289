"""Stripe payments made without the customer on Stripe's page, and 3-D Secure with Stripe.

One concept kept whole (about 540 lines): the three paths share the same Stripe invoice
plumbing (_pay, apply_pack_invoice, pending_outcome) and the same paid-exactly-once rule, which
reads best with all of them side by side.

- Auto top-up: a one-off Stripe invoice for the pack (metadata: the account, the pack
  and the top-up's key), charged off-session to the customer's default card (the card
  the plan is paid with) with an idempotency key per step. It is credited once, from
  the synchronous answer or the `invoice.paid` webhook, whichever comes first: both
  record it under the top-up's key (packs.record_paid). The top-up is reserved first
  (a "processing" payment_confirmation row, under the account lock, counted against
  the monthly cap), the Stripe calls run outside any transaction, then the answer is
  written; a reservation whose process died is finished by the scheduler with the same
  idempotency keys, so Stripe charges once.
- Pay now: `invoices.pay` on the subscription's open renewal invoice; the webhook path
  (stripe_webhooks.reconcile) then records what Stripe says.
- 3-D Secure: an invoice whose payment intent is in `requires_action` (Stripe sends
  `invoice.payment_action_required`) is neither paid nor failed: a pending confirmation
  whose "Confirm this payment" goes to the invoice's hosted_invoice_url. Paid there,
  `invoice.paid` applies it once; failed there, `invoice.payment_failed` records the
  decline; not confirmed within 24 hours, we give up on it (an upgrade or pack invoice is
  voided, so it can no longer be paid; a renewal stays with Stripe's retries).
Nothing here trusts a webhook payload: invoices are re-read from Stripe first.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import stripe
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app.billing import (
    alerts,
    clock,
    invoices,
    packs,
    payment_confirmation,
    periods,
)
from workroom_app.billing import subscriptions as subs
from workroom_app.billing.catalog import CreditPack, get_catalog
from workroom_app.billing.payment_confirmation import (
    AUTO_TOP_UP,
    OPEN,
    PENDING,
    PROCESSING,
    SUCCEEDED,
)
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.stripe.errors import StripeGatewayError
from workroom_app.billing.payments.stripe.gateway import StripeGateway, _decline_code
from workroom_app.billing.payments.stripe.metadata import (
    META_ACCOUNT,
    META_KIND,
    META_PACK,
    META_PACK_CREDITS,
    META_PACK_PRICE,
    REQUIRES_ACTION_CODE,
    derive_key,
)
from workroom_app.billing.payments.stripe.views import InvoiceView, PaymentResult
from workroom_app.billing.subscriptions.lookup import _money
from workroom_app.models import (
    Account,
    AlertKind,
    PaymentConfirmation,
    Subscription,
    SubscriptionStatus,
)

if TYPE_CHECKING:
    from workroom_app.billing.payments.stripe.sync import Nothing

log = logging.getLogger(__name__)

META_KEY = "workroom_payment_key"  # the payment's key in our books (one invoice per key)
KIND_TOP_UP = "auto_top_up"
# How long a reserved top-up may stay "processing" before the scheduler finishes it.
PROCESSING_FOR = timedelta(minutes=10)


# ----------------------------------------------------------------- Stripe calls


def stripe_gateway() -> StripeGateway:
    """The configured Stripe gateway (payments.get_gateway("stripe"))."""
    gateway = get_gateway("stripe")
    assert isinstance(gateway, StripeGateway)
    return gateway


def _pay(gateway: StripeGateway, invoice_id: str, key: str, amount: int) -> PaymentResult:
    """invoices.pay (off-session, the customer's default card): paid, declined, or
    waiting for 3-D Secure on the hosted page."""
    try:
        gateway.client.v1.invoices.pay(invoice_id, {}, {"idempotency_key": derive_key(key, "pay")})
    except stripe.CardError as exc:
        view = gateway.retrieve_invoice(invoice_id)
        if exc.code == REQUIRES_ACTION_CODE:
            return PaymentResult(
                ok=False,
                invoice=view,
                subscription=None,
                amount_cents=amount,
                requires_action=True,
                action_url=view.hosted_invoice_url,
            )
        return PaymentResult(
            ok=False,
            invoice=view,
            subscription=None,
            amount_cents=amount,
            failure_code=_decline_code(exc),
            failure_reason=exc.user_message or "Your card was declined.",
        )
    except stripe.StripeError as exc:
        raise StripeGatewayError(gateway._user_message(exc)) from exc
    return PaymentResult(
        ok=True,
        invoice=gateway.retrieve_invoice(invoice_id),
        subscription=None,
        amount_cents=amount,
    )


def charge_pack(
    gateway: StripeGateway,
    customer_id: str,
    account_id: int,
    pack: CreditPack,
    key: str,
    currency: str,
) -> PaymentResult:
    """A one-off invoice for `pack`, paid at once with the customer's default card.
    Every step has an idempotency key derived from `key`: repeating it charges once."""
    metadata = {
        META_ACCOUNT: str(account_id),
        META_KIND: KIND_TOP_UP,
        META_PACK: pack.key,
        META_PACK_CREDITS: str(pack.credits),
        META_PACK_PRICE: str(pack.price_cents),
        META_KEY: key,
    }
    description = f"Workroom auto top-up: {pack.label}"
    invoice = gateway._call(
        gateway.client.v1.invoices.create,
        {
            "customer": customer_id,
            "collection_method": "charge_automatically",
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "currency": currency,
            "description": description,
            "metadata": metadata,
        },
        {"idempotency_key": derive_key(key, "top-up-invoice")},
    )
    gateway._call(
        gateway.client.v1.invoice_items.create,
        {
            "customer": customer_id,
            "invoice": invoice.id,
            "amount": pack.price_cents,
            "currency": currency,
            "description": description,
            "metadata": metadata,
        },
        {"idempotency_key": derive_key(key, "top-up-item")},
    )
    if invoice.status == "draft":
        gateway._call(
            gateway.client.v1.invoices.finalize_invoice,
            invoice.id,
            {"auto_advance": False},
            {"idempotency_key": derive_key(key, "top-up-finalize")},
        )
    current = gateway.retrieve_invoice(invoice.id)
    if current.paid:
        return PaymentResult(
            ok=True, invoice=current, subscription=None, amount_cents=pack.price_cents
        )
    if current.requires_action:
        return PaymentResult(
            ok=False,
            invoice=current,
            subscription=None,
            amount_cents=pack.price_cents,
            requires_action=True,
            action_url=current.hosted_invoice_url,
        )
    return _pay(gateway, invoice.id, key, pack.price_cents)


def _customer_of(gateway: StripeGateway, sub: Subscription | None) -> str | None:
    if sub is None or sub.gateway != "stripe" or not sub.gateway_subscription_id:
        return None
    return gateway.retrieve_subscription(sub.gateway_subscription_id).customer_id


def has_card(session: Session, account_id: int) -> bool:
    """With Stripe the card on file is the one the account's plan is paid with."""
    sub = subs.live_subscription(session, account_id)
    return sub is not None and sub.gateway == "stripe" and bool(sub.gateway_subscription_id)


# ----------------------------------------------------------------- auto top-up


def _pack_facts(view: InvoiceView, key: str, ok: bool) -> subs.PaymentFacts:
    return subs.PaymentFacts(
        ok=ok,
        amount_cents=view.amount_paid if ok else view.amount_due,
        idempotency_key=key,
        currency=view.currency,
        gateway="stripe",
        gateway_ref=view.id,
        card_brand=view.card_brand,
        card_last4=view.card_last4,
        failure_reason=None if ok else (view.failure_reason or "Your card was declined."),
        failure_code=None if ok else view.failure_code,
    )


def reserve_top_up(
    session: Session, account_id: int, key: str, pack: CreditPack
) -> PaymentConfirmation:
    """The top-up's row, "processing" until Stripe answers (called under the
    account lock, after the cap was checked: an open top-up blocks the next one)."""
    now = clock.now()
    row = payment_confirmation.by_key(session, key)
    if row is not None:
        return row
    row = PaymentConfirmation(
        token=secrets.token_urlsafe(32),
        account_id=account_id,
        kind=AUTO_TOP_UP,
        charge_key=key,
        gateway="stripe",
        amount_cents=pack.price_cents,
        currency=subs._currency(),
        description=packs.pack_line(pack),
        details=json.dumps({"pack": packs.pack_details(pack)}),
        status=PROCESSING,
        return_path=alerts.CREDITS_LINK,
        created_at=now,
        expires_at=now + PROCESSING_FOR,
    )
    session.add(row)
    session.flush()
    return row


def run_top_up(engine: Engine, gateway: StripeGateway, row_id: int) -> None:
    """Charge a reserved top-up and write the answer (outside any transaction while
    Stripe is asked; the same keys if this runs again)."""
    from workroom_app.db import read_session, write_session  # noqa: PLC0415  (db imports billing)

    with read_session(engine) as session:
        row = session.get(PaymentConfirmation, row_id)
        if row is None or row.status != PROCESSING:
            return
        pack = payment_confirmation._pack(payment_confirmation._details(row))
        customer = _customer_of(gateway, subs.live_subscription(session, row.account_id))
        key, account_id = row.charge_key, row.account_id
    if customer is None:
        with write_session(engine) as session:
            row = payment_confirmation._lock_row(session, row_id)
            payment_confirmation.abandon(
                session, row, code="no_payment_method", reason="there is no card on file."
            )
        return
    result = charge_pack(gateway, customer, account_id, pack, key, subs._currency())
    assert result.invoice is not None  # charge_pack always answers with the invoice
    with write_session(engine) as session:
        row = session.get(PaymentConfirmation, row_id)
        apply_pack_invoice(session, row, result.invoice, requires_action=result.requires_action)


def apply_pack_invoice(
    session: Session, row: PaymentConfirmation | None, view: InvoiceView, *, requires_action: bool
) -> str | None:
    """What a top-up invoice now says, applied once (the synchronous answer and
    every webhook delivery come here). Returns a note for staff, or None."""
    key = view.metadata.get(META_KEY, "")
    account_id = int(view.metadata.get(META_ACCOUNT, "0") or 0)
    if row is None:
        row = payment_confirmation.by_key(session, key) if key else None
    if row is None:
        if view.paid and key and session.get(Account, account_id) is not None:
            # No row (e.g. a top-up reserved by an older version): credit it by its key.
            packs.record_paid(
                session, account_id, _sold(view), payment=_pack_facts(view, key, True)
            )
            return None
        return f"top-up invoice {view.id} matches no top-up of ours"
    invoices.lock_account(session, row.account_id)
    row = payment_confirmation._lock_row(session, row.id)
    if view.paid:
        if row.status in OPEN:
            payment_confirmation.succeed(session, row, gateway_ref=view.id)
        return None
    if row.status not in OPEN:
        return None
    if requires_action or view.requires_action:
        if row.status == PROCESSING:
            row.status = PENDING
            row.gateway_ref = view.id
            row.confirm_url = view.hosted_invoice_url
            row.expires_at = clock.now() + payment_confirmation.CONFIRM_WITHIN
            session.add(row)
            payment_confirmation._ask_by_email(
                session,
                row,
                AlertKind.AUTO_TOP_UP,
                "Confirm your auto top-up",
                f"Your bank asks you to confirm the auto top-up of {row.description} "
                f"({_money(row.amount_cents)}).",
            )
        return None
    if view.status in ("open", "void", "uncollectible") and view.attempt_count > 0:
        payment_confirmation.abandon(
            session,
            row,
            code=view.failure_code or "card_declined",
            reason=view.failure_reason or "Your card was declined.",
        )
    return None


def _sold(view: InvoiceView) -> CreditPack:
    meta = view.metadata
    credits = int(meta.get(META_PACK_CREDITS, "0") or 0)
    listed = get_catalog().pack(meta.get(META_PACK))
    return CreditPack(
        key=meta.get(META_PACK, ""),
        label=listed.label
        if listed is not None and listed.credits == credits
        else f"{credits:,} credits",
        credits=credits,
        price_cents=int(meta.get(META_PACK_PRICE, "0") or 0),
    )


@dataclass(frozen=True)
class TopUpInvoice:
    """A webhook about one of our top-up invoices, re-read from Stripe."""

    invoice: InvoiceView

    def apply(self, session: Session) -> str | None:
        return apply_pack_invoice(session, None, self.invoice, requires_action=False)


def one_off_invoice(invoice: InvoiceView) -> TopUpInvoice | Nothing:
    """The webhook's reading of an invoice that belongs to no subscription."""
    from workroom_app.billing.payments.stripe import sync  # noqa: PLC0415  (it imports us)

    if invoice.metadata.get(META_KIND) == KIND_TOP_UP and invoice.metadata.get(META_KEY):
        return TopUpInvoice(invoice)
    return sync.Nothing("the invoice belongs to no subscription")


# ----------------------------------------------------------------- 3-D Secure on subscription invoices


def sync_invoices(session: Session, state: Any) -> None:
    """Called at the end of every reconcile: a renewal or upgrade invoice waiting for
    3-D Secure gets its pending confirmation (and the plan is past due for a renewal);
    one paid or failed since settles it. Keyed on the Stripe invoice, so any order and
    any number of deliveries give one row."""
    local = session.exec(
        select(Subscription).where(Subscription.gateway_subscription_id == state.subscription.id)
    ).first()
    if local is None:
        return
    for invoice in state.invoices:
        kind = invoice.kind
        if kind not in (subs.RENEWAL, subs.UPGRADE):
            continue
        key = f"stripe:{invoice.id}"
        row = payment_confirmation.by_key(session, key)
        if row is None and invoice.requires_action and local.status != SubscriptionStatus.ENDED:
            _wait_for_customer(session, local, invoice, kind, key)
        elif row is not None and row.status in OPEN:
            if invoice.paid:
                row.status, row.resolved_at = SUCCEEDED, clock.now()
                session.add(row)
            elif not invoice.requires_action and invoice.status in (
                "open",
                "void",
                "uncollectible",
            ):
                # Failed on the hosted page (recorded by reconcile as a failed attempt) or voided.
                row.status = payment_confirmation.FAILED
                row.failure_reason = invoice.failure_reason or "The payment failed."
                row.resolved_at = clock.now()
                session.add(row)


def _wait_for_customer(
    session: Session, local: Subscription, invoice: InvoiceView, kind: str, key: str
) -> None:
    plan_key = invoice.metadata.get("workroom_plan") or local.plan_key
    plan = subs.get_plan(plan_key)
    payment = subs.PaymentFacts(
        ok=False,
        amount_cents=invoice.amount_due,
        idempotency_key=key,
        currency=invoice.currency,
        gateway="stripe",
        gateway_ref=invoice.id,
        card_brand=invoice.card_brand,
        card_last4=invoice.card_last4,
        requires_action=True,
        action_url=invoice.hosted_invoice_url,
    )
    start = periods.as_utc(invoice.period_start or local.current_period_end)
    end = periods.as_utc(invoice.period_end or local.current_period_end)
    details = {"subscription_id": local.id, "plan_key": plan.key, "from_plan": local.plan_key}
    if kind == subs.RENEWAL:
        details.update(
            due_at=start.isoformat(),
            period_start=start.isoformat(),
            period_end=end.isoformat(),
            pay_now=False,
        )
        description = f"your {plan.name} renewal"
    else:
        description = f"the upgrade to {plan.name}"
    payment_confirmation.require(
        session,
        local.account_id,
        kind=kind,
        payment=payment,
        description=description,
        details=details,
        return_path="/subscription",
    )


def pending_outcome(session: Session, invoice: InvoiceView, action: str) -> subs.Outcome:
    """The answer to a request whose Stripe invoice now waits for 3-D Secure."""
    row = payment_confirmation.by_key(session, f"stripe:{invoice.id}")
    if row is None:
        return subs.Outcome(
            ok=False,
            action=action,
            message="Your bank asks you to confirm this payment.",
            requires_action=True,
            confirm_url=invoice.hosted_invoice_url,
        )
    return payment_confirmation._pending_outcome(row, action)


def give_up(session: Session, row: PaymentConfirmation) -> bool:
    """No confirmation within the limit. An upgrade or top-up invoice is voided so it
    can no longer be paid; False if Stripe says it was paid meanwhile (the webhook then
    applies it). A renewal stays open with Stripe, which keeps retrying."""
    if row.kind == subs.RENEWAL or not row.gateway_ref:
        return True
    gateway = stripe_gateway()
    try:
        gateway._call(
            gateway.client.v1.invoices.void_invoice,
            row.gateway_ref,
            {},
            {"idempotency_key": derive_key(f"unconfirmed:{row.gateway_ref}", "void")},
        )
    except StripeGatewayError:
        view = gateway.retrieve_invoice(row.gateway_ref)
        if view.paid:
            return False
        if view.status != "void":
            raise
    return True


# ----------------------------------------------------------------- Pay now


def pay_now(engine: Engine, gateway: StripeGateway, account_id: int) -> subs.Outcome:
    """Pay now on a past-due Stripe plan: pay its open renewal invoice at once with the
    customer's default card, then apply what Stripe says (as the webhooks do)."""
    from workroom_app.billing.payments.stripe import sync  # noqa: PLC0415  (it imports us)
    from workroom_app.db import read_session, write_session  # noqa: PLC0415  (db imports billing)

    with read_session(engine) as session:
        sub = subs.live_subscription(session, account_id)
        if sub is None or sub.status != SubscriptionStatus.PAST_DUE:
            raise subs.NoSubscription("There is no failed payment to pay: your plan is paid up.")
        if sub.gateway != "stripe" or not sub.gateway_subscription_id:
            raise subs.SubscriptionError("This plan is not billed through Stripe.")
        waiting = payment_confirmation.waiting_renewal(session, sub)
        if waiting is not None:
            return waiting
        stripe_id, plan = sub.gateway_subscription_id, subs.get_plan(sub.plan_key)
    try:
        open_renewals = [
            i
            for i in gateway.list_subscription_invoices(stripe_id)
            if i.kind == subs.RENEWAL and i.status == "open"
        ]
        if not open_renewals:
            raise subs.NoSubscription("There is no failed payment to pay: your plan is paid up.")
        invoice = open_renewals[-1]
        # One key per attempt Stripe has seen: a double click pays once; after a
        # decline the next click is a new attempt.
        result = _pay(
            gateway, invoice.id, f"pay-now:{invoice.id}:{invoice.attempt_count}", invoice.amount_due
        )
        state = sync.fetch_state(gateway, stripe_id)
    except StripeGatewayError as exc:
        raise subs.SubscriptionError(str(exc)) from None
    with write_session(engine) as session:
        report = sync.reconcile_report(session, state)
        if result.requires_action and result.invoice is not None:
            return pending_outcome(session, result.invoice, subs.RENEWAL)
    outcome = report.outcomes.get(invoice.id)
    if result.ok:
        if outcome is not None and outcome.ok:
            return outcome
        return subs.Outcome(
            ok=True,
            action=subs.RENEWAL,
            message=f"Renewed {plan.name}.",
            amount_cents=invoice.amount_due,
        )
    return subs.Outcome(
        ok=False,
        action=subs.RENEWAL,
        message=result.failure_reason or "Your card was declined.",
        amount_cents=invoice.amount_due,
        failure_code=result.failure_code,
    )
