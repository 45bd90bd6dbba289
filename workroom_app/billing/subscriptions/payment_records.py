"""A payment attempt and what it becomes: the facts a gateway reports, the invoice
written for them, the receipt queued, and the Outcome a verb returns.

Invoice kinds (ACTIVATION, RENEWAL, UPGRADE, DOWNGRADE) double as Outcome actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from workroom_app.billing import formatting, invoices, receipts
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.payments.gateway import CardOnFile, ChargeResult, PaymentGateway
from workroom_app.billing.periods import as_utc
from workroom_app.billing.subscriptions.errors import SubscriptionError
from workroom_app.billing.subscriptions.lookup import _currency, _fmt_date, _lock, get_plan
from workroom_app.models import Account, Invoice, InvoiceStatus, PaymentMethod

ACTIVATION = "activation"


RENEWAL = "renewal"


UPGRADE = "upgrade"


DOWNGRADE = "downgrade"


_PM = PaymentMethod.__table__


_A = Account.__table__


_card_stmt = (
    core_select(_PM.c.gateway_ref, _PM.c.brand, _PM.c.last4, _PM.c.exp_month, _PM.c.exp_year)
    .where(
        _PM.c.account_id == bindparam("aid"),
        _PM.c.is_default.is_(True),
        _PM.c.removed_at.is_(None),
    )
    .order_by(_PM.c.id.desc())
    .limit(1)
)


_email_stmt = core_select(_A.c.email, _A.c.timezone).where(_A.c.id == bindparam("aid"))


@dataclass(frozen=True)
class PaymentFacts:
    """What a gateway reports about one payment attempt; becomes an invoice.

    `idempotency_key` identifies the payment (one invoice per key): the local
    gateway's charge key, or e.g. "stripe:in_123" for a Stripe invoice."""

    ok: bool
    amount_cents: int
    idempotency_key: str
    currency: str = "usd"
    gateway: str = "local"
    gateway_ref: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    failure_reason: str | None = None
    failure_code: str | None = None
    # Neither paid nor failed: the card holder must confirm it (3-D Secure;
    # billing/payment_confirmation.py), at action_url with Stripe.
    requires_action: bool = False
    action_url: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The result of a verb or record function. ok=False: the payment failed
    (message = the reason); a failed invoice was written and nothing else."""

    ok: bool
    action: str
    message: str
    subscription_id: int | None = None
    plan_key: str | None = None
    invoice_id: int | None = None
    invoice_number: str | None = None
    amount_cents: int = 0
    credits_added: int = 0
    credits_burned: int = 0
    failure_code: str | None = None
    replayed: bool = False  # the same request was already done: nothing changed now
    plan_ended: bool = False  # the account went back to Free
    # The payment waits for the card holder: send them to confirm_url ("Confirm this payment").
    requires_action: bool = False
    confirm_url: str | None = None


def _failed_count(session: Session, account_id: int, kind: str, subscription_id: int | None) -> int:
    stmt = select(func.count()).where(
        Invoice.account_id == account_id,
        Invoice.kind == kind,
        Invoice.status == InvoiceStatus.FAILED.value,
    )
    if subscription_id is not None:
        stmt = stmt.where(Invoice.subscription_id == subscription_id)
    return int(session.exec(stmt).one())


def _replay(invoice: Invoice, action: str) -> Outcome:
    ok = invoice.status != InvoiceStatus.FAILED
    return Outcome(
        ok=ok,
        action=action,
        message=(
            "This was already done: nothing changed."
            if ok
            else (invoice.failure_reason or "The payment failed.")
        ),
        subscription_id=invoice.subscription_id,
        plan_key=invoice.plan_key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        failure_code=invoice.failure_code,
        replayed=True,
    )


def _facts(
    charge: ChargeResult, card: Any, amount_cents: int, key: str, gateway_name: str
) -> PaymentFacts:
    return PaymentFacts(
        ok=charge.ok,
        amount_cents=amount_cents,
        idempotency_key=key,
        currency=_currency(),
        gateway=gateway_name,
        gateway_ref=charge.gateway_ref,
        card_brand=getattr(card, "brand", None),
        card_last4=getattr(card, "last4", None),
        failure_reason=charge.failure_reason,
        failure_code=charge.failure_code,
        requires_action=charge.requires_action,
        action_url=charge.action_url,
    )


def _no_card_facts(amount_cents: int, key: str, gateway_name: str) -> PaymentFacts:
    return PaymentFacts(
        ok=False,
        amount_cents=amount_cents,
        idempotency_key=key,
        currency=_currency(),
        gateway=gateway_name,
        failure_reason="No card on file. Add a card on the Subscription page.",
        failure_code="no_payment_method",
    )


def _charge(
    session: Session,
    gateway: PaymentGateway,
    account_id: int,
    card: Any,
    amount_cents: int,
    description: str,
    key: str,
    *,
    off_session: bool = False,
) -> PaymentFacts:
    if card is None:
        return _no_card_facts(amount_cents, key, gateway.name)
    result = gateway.charge(
        account_id,
        card,
        amount_cents,
        _currency(),
        description,
        key,
        session=session,
        off_session=off_session,
    )
    return _facts(result, card, amount_cents, key, gateway.name)


# ---------------------------------------------------- payments the card holder must confirm


def _needs_confirmation(
    session: Session,
    account_id: int,
    kind: str,
    payment: PaymentFacts,
    description: str,
    details: dict,
    return_path: str,
) -> Outcome:
    """3-D Secure: the payment waits for its card holder (billing/payment_confirmation.py)."""
    # It builds on this package: a top-level import would be a cycle.
    from workroom_app.billing import payment_confirmation  # noqa: PLC0415

    return payment_confirmation.require(
        session,
        account_id,
        kind=kind,
        payment=payment,
        description=description,
        details=details,
        return_path=return_path,
    )


def _card_details(card: Any, store: str | None) -> dict:
    """A typed-in card to save once its payment is confirmed ("always", "if_none")."""
    if store is None or card is None:
        return {}
    fields = ("gateway_ref", "brand", "last4", "exp_month", "exp_year")
    return {"store_card": store, "card": {f: getattr(card, f) for f in fields}}


def _renewal_details(
    sub_id: int, plan_key: str, due_at: datetime, start: datetime, end: datetime, *, pay_now: bool
) -> dict:
    return {
        "subscription_id": sub_id,
        "plan_key": plan_key,
        "due_at": as_utc(due_at).isoformat(),
        "period_start": as_utc(start).isoformat(),
        "period_end": as_utc(end).isoformat(),
        "pay_now": pay_now,
    }


def _waiting_renewal(session: Session, sub: Any) -> Outcome | None:
    """Pay now while this renewal already waits for confirmation: that one, not a second charge."""
    # It builds on this package: a top-level import would be a cycle.
    from workroom_app.billing import payment_confirmation  # noqa: PLC0415

    return payment_confirmation.waiting_renewal(session, sub)


def _period_label(start: datetime, end: datetime) -> str:
    return f"{_fmt_date(as_utc(start))} to {_fmt_date(as_utc(end))}"


def _write_invoice(
    session: Session,
    account_id: int,
    *,
    kind: str,
    payment: PaymentFacts,
    lines: list[LineItem],
    subscription_id: int | None,
    plan_key: str | None,
    period_start: datetime | None,
    period_end: datetime | None,
) -> tuple[Invoice, bool]:
    if payment.amount_cents < 0:
        raise SubscriptionError("A payment amount cannot be negative.")
    return invoices.create_invoice(
        session,
        account_id,
        kind=kind,
        status=InvoiceStatus.PAID.value if payment.ok else InvoiceStatus.FAILED.value,
        amount_cents=payment.amount_cents,
        idempotency_key=payment.idempotency_key,
        lines=lines,
        currency=payment.currency,
        subscription_id=subscription_id,
        plan_key=plan_key,
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
        period_start=period_start,
        period_end=period_end,
        failure_reason=None if payment.ok else (payment.failure_reason or "The payment failed."),
        failure_code=None if payment.ok else payment.failure_code,
        gateway=payment.gateway,
        gateway_ref=payment.gateway_ref,
    )


def _receipt(session: Session, invoice: Invoice, plan_name: str | None) -> None:
    row = session.connection().execute(_email_stmt, {"aid": invoice.account_id}).first()
    if row is not None and row.email is not None:
        # The zone comes with the address: no second query per renewal.
        receipts.queue_receipt(
            session,
            invoice,
            to_address=row.email,
            plan_name=plan_name,
            time_zone=formatting.zone(row.timezone),
        )


def _card_on_file(session: Session, account_id: int) -> CardOnFile | None:
    row = session.connection().execute(_card_stmt, {"aid": account_id}).first()
    return CardOnFile(*row) if row is not None else None


def _failed_outcome(
    invoice: Invoice, action: str, subscription_id: int | None, plan_key: str | None
) -> Outcome:
    return Outcome(
        ok=False,
        action=action,
        message=invoice.failure_reason or "The payment failed.",
        subscription_id=subscription_id,
        plan_key=plan_key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        failure_code=invoice.failure_code,
    )


def record_failed_attempt(
    session: Session,
    account_id: int,
    *,
    kind: str,
    payment: PaymentFacts,
    plan_key: str | None,
    subscription_id: int | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    description: str | None = None,
) -> Outcome:
    """A declined checkout/upgrade/downgrade: a failed invoice with the reason,
    nothing else (no plan change, no credits, no receipt)."""
    if payment.ok:
        raise SubscriptionError("record_failed_attempt needs a failed payment.")
    _lock(session, account_id)
    plan = get_plan(plan_key) if plan_key else None
    lines = [
        LineItem(description or (f"{plan.name} plan" if plan else "Payment"), payment.amount_cents)
    ]
    invoice, _ = _write_invoice(
        session,
        account_id,
        kind=kind,
        payment=payment,
        lines=lines,
        subscription_id=subscription_id,
        plan_key=plan_key,
        period_start=period_start,
        period_end=period_end,
    )
    return _failed_outcome(invoice, kind, subscription_id, plan_key)
