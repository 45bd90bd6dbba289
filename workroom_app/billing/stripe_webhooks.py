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
   Stripe and the app's copy is brought in line with them by `reconcile_report`
   (billing/payments/stripe/sync.py, shared with the user's own requests).
4. The Stripe reads happen before the database transaction (no network wait
   while holding the write lock); then the event row and every effect commit
   in ONE transaction, or none of it does (the event is then stored as failed,
   answered 500, and Stripe delivers it again).

Why this makes the order irrelevant: `reconcile_report` replays the subscription's
invoice history (oldest first) through the engine's verbs, each keyed on the
Stripe invoice id, and then copies the subscription's flags (cancel at period
end, ended). Whatever event arrives first does all the work the current Stripe
state implies; later ones find nothing left to do. A replay is harmless
because every effect is idempotent on a Stripe id (unique keys on the ledger,
the invoices and the subscription's gateway id).

What a user does with a Stripe plan or pack (Checkout, plan change, cancel, resume) is in
billing/payments/stripe/actions.py; the names it used to have here are re-exported.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import stripe
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from workroom_app.billing import clock, stripe_payments
from workroom_app.billing.payments.stripe import StripeGateway, StripeGatewayError

# What used to live here and moved to the Stripe gateway package: re-exported so the
# callers (and tests) that name them here keep working.
from workroom_app.billing.payments.stripe.actions import (
    cancel,
    change_plan,
    resume,
    start_checkout,
    start_pack_checkout,
    sync_checkout_session,
    sync_pack_checkout,
)
from workroom_app.billing.payments.stripe.sync import (
    Nothing,
    PackPurchase,
    ReconcileReport,
    StripeState,
    apply_pack_purchase,
    fetch_checkout,
    fetch_pack_purchase,
    fetch_state,
    local_subscription,
    payment_facts,
    reconcile_report,
    sync_subscription,
)
from workroom_app.db import get_engine, read_session, write_session
from workroom_app.models import WebhookEvent

log = logging.getLogger(__name__)

__all__ = [
    "BadWebhook",
    "CheckoutSessionCompleted",
    "CustomerSubscriptionDeleted",
    "CustomerSubscriptionUpdated",
    "DONE_OUTCOMES",
    "FAILED",
    "HANDLERS",
    "Handler",
    "IGNORED",
    "InvoicePaid",
    "InvoicePaymentFailed",
    "PROCESSED",
    "SIGNATURE_TOLERANCE_SECONDS",
    "WebhookOutcome",
    "WebhookProcessor",
    "Nothing",
    "PackPurchase",
    "ReconcileReport",
    "StripeState",
    "apply_pack_purchase",
    "cancel",
    "change_plan",
    "fetch_checkout",
    "fetch_pack_purchase",
    "fetch_state",
    "local_subscription",
    "payment_facts",
    "reconcile_report",
    "resume",
    "start_checkout",
    "start_pack_checkout",
    "sync_checkout_session",
    "sync_pack_checkout",
    "sync_subscription",
]

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


# ----------------------------------------------------------------- handlers


class Applies(Protocol):
    """An event that applies itself in the event's transaction (refunds, disputes:
    billing/stripe_refunds.py; auto top-up invoices: billing/stripe_payments.py)."""

    def apply(self, session: Session) -> str | None: ...


class Handler:
    """One event type: find the Stripe subscription behind it and re-read it."""

    event_type: ClassVar[str]

    def fetch(
        self, gateway: StripeGateway, obj: dict[str, Any]
    ) -> StripeState | PackPurchase | Nothing | Applies:
        raise NotImplementedError


class CheckoutSessionCompleted(Handler):
    event_type = "checkout.session.completed"

    def fetch(self, gateway: StripeGateway, obj: dict[str, Any]) -> Any:
        return fetch_checkout(gateway, obj["id"])


class _InvoiceHandler(Handler):
    def fetch(self, gateway: StripeGateway, obj: dict[str, Any]) -> StripeState | Nothing | Applies:
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
    def fetch(self, gateway: StripeGateway, obj: dict[str, Any]) -> StripeState | Nothing:
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
        state: StripeState | PackPurchase | Nothing | Applies | None,
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
                elif state is not None:
                    # Refunds and disputes (billing/stripe_refunds.py), auto top-ups.
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


# Refund and dispute handlers register themselves in HANDLERS (imported last:
# they build on the classes above).
from workroom_app.billing import stripe_refunds as _stripe_refunds  # noqa: E402, F401
