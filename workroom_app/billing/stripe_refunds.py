"""Stripe events about money going back: ``charge.refunded`` and disputes
(``charge.dispute.created`` / ``charge.dispute.closed``).

Like the subscription handlers (stripe_webhooks.py) these never trust the
payload: the charge or dispute is re-read from Stripe before the
transaction, and applying it is idempotent (a refund is recorded only for the
part of Stripe's refunded total we have not counted yet; a dispute is one row
keyed on its Stripe id, updated to Stripe's latest status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from workroom_app.billing import clock, invoice_refunds
from workroom_app.billing.payments.stripe import ChargeView, DisputeView, StripeGateway
from workroom_app.billing.stripe_webhooks import HANDLERS, Handler, Nothing
from workroom_app.models import Invoice, PaymentDispute

CLOSED_DISPUTE_STATUSES = ("won", "lost", "warning_closed")


def _local_invoice(session: Session, stripe_invoice_id: str | None) -> Invoice | None:
    if not stripe_invoice_id:
        return None
    return (
        session.execute(
            select(Invoice)
            .where(Invoice.gateway == "stripe", Invoice.gateway_ref == stripe_invoice_id)
            .order_by(Invoice.id)
        )
        .scalars()
        .first()
    )


@dataclass(frozen=True)
class ChargeRefunded:
    charge: ChargeView
    stripe_invoice_id: str | None

    def apply(self, session: Session) -> str | None:
        invoice = _local_invoice(session, self.stripe_invoice_id)
        if invoice is None:
            return "refunded charge belongs to no invoice of ours"
        return invoice_refunds.record_gateway_refund(
            session, invoice, self.charge.amount_refunded, self.charge.id
        )


@dataclass(frozen=True)
class DisputeChanged:
    dispute: DisputeView
    stripe_invoice_id: str | None

    def apply(self, session: Session) -> str | None:
        d = self.dispute
        invoice = _local_invoice(session, self.stripe_invoice_id)
        now = clock.now()
        row = session.get(PaymentDispute, d.id)
        if row is None:
            row = PaymentDispute(
                id=d.id,
                charge_id=d.charge_id,
                amount_cents=d.amount,
                currency=d.currency,
                reason=d.reason[:64],
                status=d.status,
                created_at=now,
                updated_at=now,
            )
        row.account_id = invoice.account_id if invoice is not None else row.account_id
        row.invoice_id = invoice.id if invoice is not None else row.invoice_id
        row.status, row.amount_cents, row.updated_at = d.status, d.amount, now
        if d.status in CLOSED_DISPUTE_STATUSES and row.closed_at is None:
            row.closed_at = now
        session.add(row)
        return None if invoice is not None else "disputed charge belongs to no invoice of ours"


class ChargeRefundedHandler(Handler):
    event_type = "charge.refunded"

    def fetch(self, gateway: StripeGateway, obj: dict[str, Any]) -> ChargeRefunded | Nothing:
        charge = gateway.retrieve_charge(obj["id"])
        if charge.payment_intent_id is None:
            return Nothing("the charge has no payment intent")
        return ChargeRefunded(charge, gateway.invoice_for_payment_intent(charge.payment_intent_id))


class _DisputeHandler(Handler):
    def fetch(self, gateway: StripeGateway, obj: dict[str, Any]) -> DisputeChanged:
        dispute = gateway.retrieve_dispute(obj["id"])
        intent = dispute.payment_intent_id
        if intent is None and dispute.charge_id:
            intent = gateway.retrieve_charge(dispute.charge_id).payment_intent_id
        return DisputeChanged(
            dispute, gateway.invoice_for_payment_intent(intent) if intent else None
        )


class DisputeCreated(_DisputeHandler):
    event_type = "charge.dispute.created"


class DisputeClosed(_DisputeHandler):
    event_type = "charge.dispute.closed"


class DisputeUpdated(_DisputeHandler):
    event_type = "charge.dispute.updated"


for _handler in (ChargeRefundedHandler(), DisputeCreated(), DisputeClosed(), DisputeUpdated()):
    HANDLERS[_handler.event_type] = _handler
