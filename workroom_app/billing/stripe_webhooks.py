"""Stripe webhooks: verified, stored, processed once, in any order.

Stripe delivers each event at least once and in no guaranteed order, and an
event's payload may be stale by the time it arrives. So:

1. The signature is checked on the raw body (`stripe.WebhookSignature`); a bad
   one is refused (400) before anything is read or stored.
2. Every accepted delivery is stored raw in `webhook_event` with its outcome
   (processed, ignored, failed). The event id is the primary key: a duplicate
   of a processed or ignored event answers 200 and changes nothing.
3. Handlers never act on the payload. Each one (one small class per event
   type, registered in HANDLERS) only finds which Stripe subscription the
   event is about; the subscription and its invoices are then RE-READ from
   Stripe and the app's copy is brought in line with them by `reconcile`.
4. The Stripe reads happen before the database transaction (no network wait
   while holding the write lock); then the event row and every effect commit
   in ONE transaction, or none of it does (the event is then stored as failed,
   answered 500, and Stripe delivers it again).

Why this makes the order irrelevant: `reconcile` replays the subscription's
invoice history (oldest first) through the engine's verbs, each keyed on the
Stripe invoice id, and then copies the subscription's flags (cancel at period
end, ended). Whatever event arrives first does all the work the current Stripe
state implies; later ones find nothing left to do. A replay is harmless
because every effect is idempotent on a Stripe id (unique keys on the ledger,
the invoices and the subscription's gateway id).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import stripe
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from workroom_app.billing import clock, formatting, stripe_payments, subscriptions
from workroom_app.billing.payments.stripe_gateway import (
    META_PLAN,
    PAID_PLANS,
    InvoiceView,
    PackPaymentView,
    StripeGateway,
    StripeGatewayError,
    SubscriptionView,
)
from workroom_app.billing.subscriptions import PaymentFacts
from workroom_app.db import get_engine, read_session, write_session
from workroom_app.models import Account, Subscription, SubscriptionStatus, WebhookEvent

log = logging.getLogger(__name__)

PROCESSED = "processed"
IGNORED = "ignored"
FAILED = "failed"
DONE_OUTCOMES = (PROCESSED, IGNORED)
SIGNATURE_TOLERANCE_SECONDS = 300


class BadWebhook(Exception):
    """The delivery is not a genuine, well-formed Stripe event (answer 400)."""


@dataclass(frozen=True)
class WebhookOutcome:
    status_code: int
    outcome: str  # processed, ignored, duplicate, failed, rejected
    event_id: str | None = None
    error: str | None = None


# ----------------------------------------------------------------- what Stripe says now


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


# ----------------------------------------------------------------- handlers


class Handler:
    """One event type: find the Stripe subscription behind it and re-read it."""

    event_type: ClassVar[str]

    def fetch(self, gateway: StripeGateway, obj: dict[str, Any]) -> StripeState | Nothing:
        raise NotImplementedError


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


class CheckoutSessionCompleted(Handler):
    event_type = "checkout.session.completed"

    def fetch(self, gateway, obj):
        session = gateway.retrieve_checkout_session(obj["id"])
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


class _InvoiceHandler(Handler):
    def fetch(self, gateway, obj):
        invoice = gateway.retrieve_invoice(obj["id"])
        if invoice.subscription_id is None:
            return stripe_payments.one_off_invoice(invoice)  # an auto top-up, or nothing of ours
        if invoice.kind == "upgrade" and invoice.paid:
            # The upgrade was paid but the price swap may not have happened
            # (the app crashed in between): finish it, under the same
            # idempotency key the app used, so Stripe swaps once.
            gateway.complete_upgrade(invoice.id)
        return fetch_state(gateway, invoice.subscription_id)


class InvoicePaid(_InvoiceHandler):
    event_type = "invoice.paid"


class InvoicePaymentFailed(_InvoiceHandler):
    event_type = "invoice.payment_failed"


class InvoicePaymentActionRequired(_InvoiceHandler):
    """3-D Secure: the invoice waits for the customer on its hosted page."""

    event_type = "invoice.payment_action_required"


class _SubscriptionHandler(Handler):
    def fetch(self, gateway, obj):
        return fetch_state(gateway, obj["id"])


class CustomerSubscriptionUpdated(_SubscriptionHandler):
    event_type = "customer.subscription.updated"


class CustomerSubscriptionDeleted(_SubscriptionHandler):
    event_type = "customer.subscription.deleted"


HANDLERS: dict[str, Handler] = {
    handler.event_type: handler
    for handler in (
        CheckoutSessionCompleted(),
        InvoicePaid(),
        InvoicePaymentFailed(),
        InvoicePaymentActionRequired(),
        CustomerSubscriptionUpdated(),
        CustomerSubscriptionDeleted(),
    )
}


# ----------------------------------------------------------------- the processor


def _signed_at(signature: str | None) -> int:
    """The t= timestamp of a Stripe-Signature header (0 when absent; verify_header ran first)."""
    for part in (signature or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    return 0


class WebhookProcessor:
    def __init__(
        self,
        engine: Engine,
        gateway: StripeGateway,
        *,
        secret: str | None = None,
        tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
    ):
        self.engine = engine
        self.gateway = gateway
        self.secret = secret if secret is not None else gateway.webhook_secret
        if not self.secret:
            raise StripeGatewayError(
                "Stripe webhooks are not configured: set WORKROOM_STRIPE_WEBHOOK_SECRET."
            )
        self.tolerance = tolerance

    @classmethod
    def from_settings(cls) -> WebhookProcessor:
        return cls(get_engine(), StripeGateway())

    # ------------------------------------------------------------ entry point

    def process(self, payload: bytes | str, signature: str | None) -> WebhookOutcome:
        try:
            event = self.verify(payload, signature)
        except BadWebhook as exc:
            return WebhookOutcome(400, "rejected", error=str(exc))
        event_id, event_type = event["id"], event["type"]
        raw = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload

        if self._already_done(event_id):
            return WebhookOutcome(200, "duplicate", event_id)

        handler = HANDLERS.get(event_type)
        if handler is None:
            return self._finish(event_id, event_type, raw, None, IGNORED)

        try:
            state = handler.fetch(self.gateway, event["data"]["object"])
        except (StripeGatewayError, stripe.StripeError, KeyError, ValueError) as exc:
            return self._store_failure(
                event_id, event_type, raw, f"re-reading from Stripe failed: {exc}"
            )
        return self._finish(event_id, event_type, raw, state, PROCESSED)

    def verify(self, payload: bytes | str, signature: str | None) -> dict[str, Any]:
        """The event, if the body is signed with our secret and well formed."""
        try:
            stripe.WebhookSignature.verify_header(payload, signature, self.secret, self.tolerance)
        except stripe.SignatureVerificationError as exc:
            raise BadWebhook(f"Invalid Stripe signature: {exc.user_message or exc}") from None
        except UnicodeDecodeError:
            raise BadWebhook("The body is not UTF-8 text.") from None
        # Stripe's check only refuses old timestamps; a signed event stamped in the future (a
        # replay prepared ahead, or a wrong clock) is refused too, allowing the same skew.
        if _signed_at(signature) > time.time() + self.tolerance:
            raise BadWebhook("Invalid Stripe signature: the timestamp is in the future.")
        try:
            event = json.loads(payload)
        except ValueError:
            raise BadWebhook("The body is not JSON.") from None
        if not (
            isinstance(event, dict)
            and event.get("object") == "event"
            and isinstance(event.get("id"), str)
            and 0 < len(event["id"]) <= 128
            and isinstance(event.get("type"), str)
            and 0 < len(event["type"]) <= 128
            and isinstance(event.get("data"), dict)
            and isinstance(event["data"].get("object"), dict)
            and isinstance(event["data"]["object"].get("id"), str)
        ):
            raise BadWebhook("The body is not a Stripe event.")
        return event

    # ------------------------------------------------------------ storage

    def _already_done(self, event_id: str) -> bool:
        with read_session(self.engine) as session:
            row = session.get(WebhookEvent, event_id)
            return row is not None and row.outcome in DONE_OUTCOMES

    def _finish(
        self,
        event_id: str,
        event_type: str,
        raw: str,
        state: StripeState | Nothing | None,
        outcome: str,
    ) -> WebhookOutcome:
        """Store the event and apply its effects in one transaction."""
        try:
            with write_session(self.engine) as session:
                row = self._claim(session, event_id, event_type, raw)
                if row is None:
                    return WebhookOutcome(200, "duplicate", event_id)
                note = None
                if isinstance(state, StripeState):
                    # Only what staff must act on is kept (e.g. a double payment to refund).
                    note = "; ".join(reconcile_report(session, state).problems) or None
                elif isinstance(state, PackPurchase):
                    note = apply_pack_purchase(session, state)
                elif isinstance(state, Nothing):
                    note, outcome = state.reason, IGNORED
                elif state is not None and hasattr(state, "apply"):
                    # Refunds and disputes (billing/stripe_refunds.py).
                    note = state.apply(session)
                row.outcome = outcome
                row.error = note
                row.processed_at = clock.now()
                session.add(row)
        except IntegrityError:
            # A concurrent delivery of the same event inserted the row first
            # (PostgreSQL): it is processed there.
            if self._already_done(event_id):
                return WebhookOutcome(200, "duplicate", event_id)
            return self._store_failure(event_id, event_type, raw, "conflicting concurrent delivery")
        except Exception as exc:  # noqa: BLE001  (any failure: roll back, keep the event, let Stripe retry)
            log.exception("Stripe event %s (%s) failed", event_id, event_type)
            return self._store_failure(
                event_id, event_type, raw, f"{exc.__class__.__name__}: {exc}"
            )
        return WebhookOutcome(200, outcome, event_id)

    def _claim(
        self, session: Session, event_id: str, event_type: str, raw: str
    ) -> WebhookEvent | None:
        """The event's row, locked for this transaction; None if already done."""
        row = session.exec(
            select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update()
        ).first()
        if row is not None:
            if row.outcome in DONE_OUTCOMES:
                return None
            return row
        row = WebhookEvent(id=event_id, type=event_type, payload=raw, received_at=clock.now())
        session.add(row)
        # Insert now: a concurrent duplicate blocks on the primary key here,
        # before any effect is applied.
        session.flush()
        return row

    def _store_failure(
        self, event_id: str, event_type: str, raw: str, error: str
    ) -> WebhookOutcome:
        try:
            with write_session(self.engine) as session:
                row = session.get(WebhookEvent, event_id)
                if row is None:
                    row = WebhookEvent(
                        id=event_id, type=event_type, payload=raw, received_at=clock.now()
                    )
                elif row.outcome in DONE_OUTCOMES:
                    return WebhookOutcome(200, "duplicate", event_id)
                row.outcome = FAILED
                row.error = error[:2000]
                row.processed_at = clock.now()
                session.add(row)
        except IntegrityError:
            return WebhookOutcome(200, "duplicate", event_id)
        return WebhookOutcome(500, FAILED, event_id, error)


# ----------------------------------------------------------------- Stripe state -> engine verbs


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


def reconcile(session: Session, state: StripeState) -> str:
    return reconcile_report(session, state).note


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
                outcome = subscriptions.record_renewal_paid(
                    session,
                    local,
                    period_start=invoice.period_start,
                    period_end=invoice.period_end,
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
            outcome = subscriptions.apply_downgrade(
                session,
                local,
                to_plan,
                payment=payment_facts(invoice),
                period_start=invoice.period_start,
                period_end=invoice.period_end,
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
    try:
        outcome = subscriptions.activate_from_gateway(
            session,
            account_id,
            _invoice_plan(state, invoice),
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            payment=payment_facts(invoice),
            gateway_subscription_id=view.id,
            anchor_day=invoice.period_start.day,
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


def _record_failed_change(
    session: Session, local: Subscription, invoice: InvoiceView, to_plan: str
):
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


# ----------------------------------------------------------------- what a user does with a Stripe plan
#
# The Plans and Subscription pages call these when the account's subscription
# is a Stripe one (Subscription.gateway == "stripe") or, for a new plan, when
# settings.payment_gateway == "stripe". Each asks Stripe to act, then applies
# what Stripe now says through the same `reconcile` the webhooks use, so the
# page shows the result at once and the webhooks that follow change nothing.


def sync_subscription(
    engine: Engine, gateway: StripeGateway, stripe_subscription_id: str
) -> ReconcileReport:
    state = fetch_state(gateway, stripe_subscription_id)
    with write_session(engine) as session:
        return reconcile_report(session, state)


def sync_checkout_session(
    engine: Engine, gateway: StripeGateway, checkout_session_id: str
) -> ReconcileReport | None:
    """For the page Checkout's success_url returns to: activate without waiting
    for the webhook. None while the session is not paid."""
    if not isinstance(checkout_session_id, str) or not checkout_session_id.startswith("cs_"):
        raise subscriptions.SubscriptionError("That checkout session does not exist.")
    state = CheckoutSessionCompleted().fetch(gateway, {"id": checkout_session_id})
    if isinstance(state, Nothing):
        return None
    with write_session(engine) as session:
        return reconcile_report(session, state)


def start_checkout(
    engine: Engine,
    gateway: StripeGateway,
    account_id: int,
    plan_key: str,
    *,
    success_url: str,
    cancel_url: str,
):
    """A Checkout Session for `plan_key` (the page then redirects to its url).

    The idempotency key is the engine's subscribe key, derived from the
    account's state: a double click gets the same session."""
    with read_session(engine) as session:
        preview = subscriptions.preview_subscribe(session, account_id, plan_key)
        account = session.get(Account, account_id)
    return gateway.create_checkout_session(
        account, preview.plan_key, success_url, cancel_url, idempotency_key=preview.idempotency_key
    )


# ----------------------------------------------------------------- credit packs


def apply_pack_purchase(session: Session, purchase: PackPurchase) -> str | None:
    """Credit a paid pack once (keyed on the Checkout Session id, so every
    delivery, in any order, and the success page's own sync credit it once).
    Returns a note for staff when the payment cannot be credited as sold."""
    from workroom_app.billing import packs
    from workroom_app.billing.catalog import CreditPack, get_catalog

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
    listed = get_catalog().pack(view.pack_key)
    pack = CreditPack(
        key=view.pack_key,
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


def start_pack_checkout(
    engine: Engine,
    gateway: StripeGateway,
    account_id: int,
    pack_key: object,
    *,
    success_url: str,
    cancel_url: str,
    expected_preview=None,
):
    """A Checkout Session (mode payment) for a credit pack. Its idempotency key
    is the purchase key the user was shown: a double click gets one session."""
    from workroom_app.billing import packs

    with read_session(engine) as session:
        preview = packs.preview(session, account_id, pack_key)
        account = session.get(Account, account_id)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise subscriptions.PreviewOutdated(
            "The price of this pack changed since you saw it. Nothing was charged; please review it again."
        )
    pack = packs.check_pack(preview.pack_key)
    return gateway.create_pack_checkout_session(
        account,
        pack,
        success_url,
        cancel_url,
        currency=preview.currency,
        idempotency_key=preview.idempotency_key,
    )


def sync_pack_checkout(
    engine: Engine, gateway: StripeGateway, checkout_session_id: object, account_id: int
) -> bool:
    """For the page a pack's Checkout returns to: credit it without waiting for
    the webhook. True when the session is a paid pack of this account (credited
    now or before)."""
    if (
        not isinstance(checkout_session_id, str)
        or not checkout_session_id.startswith("cs_")
        or len(checkout_session_id) > 255
    ):
        raise subscriptions.SubscriptionError("That checkout session does not exist.")
    state = fetch_pack_purchase(gateway, checkout_session_id)
    if isinstance(state, Nothing) or state.payment.account_id != account_id:
        return False
    with write_session(engine) as session:
        return apply_pack_purchase(session, state) is None


def _stripe_subscription(session: Session, account_id: int) -> Subscription:
    sub = subscriptions.live_subscription(session, account_id)
    if sub is None:
        raise subscriptions.NoSubscription("You're on Free. Subscribe to a plan first.")
    if sub.gateway != "stripe" or not sub.gateway_subscription_id:
        raise subscriptions.SubscriptionError("This plan is not billed through Stripe.")
    return sub


def change_plan(
    engine: Engine,
    gateway: StripeGateway,
    account_id: int,
    new_plan_key: str,
    *,
    expected_preview: subscriptions.ChangePreview | None = None,
) -> subscriptions.Outcome:
    """Upgrade or downgrade a Stripe subscription (what the user confirmed).

    The preview is the engine's own (same numbers as the local gateway); its
    idempotency key makes two clicks one Stripe charge."""
    with read_session(engine) as session:
        preview = subscriptions.preview_change(session, account_id, new_plan_key)
        sub = _stripe_subscription(session, account_id)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise subscriptions.PreviewOutdated(
            "Your plan or balance changed since you reviewed this change. Nothing was charged; "
            "please review it again."
        )
    try:
        change = gateway.upgrade if preview.kind == subscriptions.UPGRADE else gateway.downgrade
        result = change(
            sub.gateway_subscription_id,
            preview.to_plan_key,
            idempotency_key=preview.idempotency_key,
            expected_amount_cents=preview.charge_cents,
        )
    except StripeGatewayError as exc:
        raise subscriptions.SubscriptionError(str(exc)) from None
    state = fetch_state(gateway, sub.gateway_subscription_id)
    with write_session(engine) as session:
        report = reconcile_report(session, state)
        if result.requires_action and result.invoice is not None:
            # 3-D Secure: the change happens once the customer confirms on Stripe's page.
            return stripe_payments.pending_outcome(session, result.invoice, preview.kind)
        if not result.ok:
            local = session.get(Subscription, sub.id)
            facts = PaymentFacts(
                ok=False,
                amount_cents=result.amount_cents,
                idempotency_key=(
                    f"stripe:{result.invoice.id}:failed:{result.invoice.attempt_count}"
                    if result.invoice is not None
                    else f"stripe:declined:{preview.idempotency_key}"
                ),
                currency=preview.currency,
                gateway="stripe",
                gateway_ref=result.invoice.id if result.invoice is not None else None,
                card_brand=result.invoice.card_brand if result.invoice is not None else None,
                card_last4=result.invoice.card_last4 if result.invoice is not None else None,
                failure_reason=result.failure_reason,
                failure_code=result.failure_code,
            )
            return subscriptions.record_failed_attempt(
                session,
                local.account_id,
                kind=preview.kind,
                payment=facts,
                plan_key=preview.to_plan_key,
                subscription_id=local.id,
                period_start=local.current_period_start,
                period_end=local.current_period_end,
                description=f"{preview.kind.capitalize()} from {preview.from_plan_name} to {preview.to_plan_name}",
            )
    outcome = report.outcomes.get(result.invoice.id) if result.invoice is not None else None
    if outcome is not None and not outcome.replayed:
        return outcome
    # A webhook got there first: the change is done; say what it did.
    return subscriptions.Outcome(
        ok=True,
        action=preview.kind,
        message=f"You're on {preview.to_plan_name}.",
        subscription_id=sub.id,
        plan_key=preview.to_plan_key,
        amount_cents=preview.charge_cents,
        credits_added=preview.credits_added,
        credits_burned=preview.credits_burned,
    )


def cancel(engine: Engine, gateway: StripeGateway, account_id: int) -> subscriptions.Outcome:
    """Stop auto-renewal in Stripe; the plan stays until the period end."""
    return _set_auto_renewal(engine, gateway, account_id, cancel=True)


def resume(engine: Engine, gateway: StripeGateway, account_id: int) -> subscriptions.Outcome:
    return _set_auto_renewal(engine, gateway, account_id, cancel=False)


def _set_auto_renewal(
    engine: Engine, gateway: StripeGateway, account_id: int, *, cancel: bool
) -> subscriptions.Outcome:
    with read_session(engine) as session:
        sub = _stripe_subscription(session, account_id)
    # A fresh key per request: cancel, resume, cancel again must each act
    # (a reused key would replay the first answer); retries inside the SDK
    # reuse it.
    key = f"{'cancel' if cancel else 'resume'}:{sub.id}:{uuid.uuid4().hex}"
    try:
        if cancel and sub.status == SubscriptionStatus.PAST_DUE:
            # Its paid period is already over: the plan ends now (as with the local gateway).
            gateway.cancel_now(sub.gateway_subscription_id, idempotency_key=key)
            sync_subscription(engine, gateway, sub.gateway_subscription_id)
            return subscriptions.Outcome(
                ok=True,
                action="end",
                message="Your plan has ended. You're on Free.",
                subscription_id=sub.id,
                plan_key=sub.plan_key,
            )
        if cancel:
            gateway.cancel_at_period_end(sub.gateway_subscription_id, idempotency_key=key)
        else:
            gateway.resume(sub.gateway_subscription_id, idempotency_key=key)
    except StripeGatewayError as exc:
        raise subscriptions.SubscriptionError(str(exc)) from None
    sync_subscription(engine, gateway, sub.gateway_subscription_id)
    with read_session(engine) as session:
        fresh = session.get(Subscription, sub.id)
        plan = subscriptions.get_plan(fresh.plan_key)
        end = fresh.current_period_end
        end_text = formatting.format_date(end, formatting.account_zone(session, fresh.account_id))
    return subscriptions.Outcome(
        ok=True,
        action="cancel" if cancel else "resume",
        message=(
            f"Auto-renewal is off. {plan.name} and its credits stay until {end_text}; then you're on Free."
            if cancel
            else f"Auto-renewal is on. {plan.name} renews on {end_text}."
        ),
        subscription_id=sub.id,
        plan_key=fresh.plan_key,
    )


# Refund and dispute handlers register themselves in HANDLERS (imported last:
# they build on the classes above).
from workroom_app.billing import stripe_refunds as _stripe_refunds  # noqa: E402, F401
