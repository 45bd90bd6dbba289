"""Refunds of paid invoices: by staff (local gateway or Stripe) and from
Stripe (``charge.refunded`` for a refund made in Stripe's dashboard).

Decision (README "Decisions"): a refund of r out of the R still unrefunded on
an invoice takes back floor(unspent × r / R) of the credits that invoice
granted, where "unspent" is what is left now of that invoice's grants (live,
not expired, not burned). So a full refund (r = R) removes every unspent
credit the invoice bought; a half refund removes half of what is unspent; the
credits already used stay used, and because only what is left of those grants
can be taken, a balance never goes below zero. The removal is one Staff
adjustment ledger row (ledger.remove_from_grants) with the refund's reason.

A staff refund runs in three steps, so no network call is made while a
database lock is held and a crash in between never refunds twice:
1. one transaction checks everything (role, the invoice is this account's and
   paid, the amount is a whole number of cents within what is left) and
   writes a 'pending' refund row under an idempotency key derived from the
   staff member and the request id their form got when it opened;
2. the gateway is asked (Stripe with that idempotency key, so a retry refunds
   once; the local test gateway holds its charges in our database);
3. one transaction marks the row succeeded (or failed), takes the credits
   back, marks the invoice refunded when nothing is left, queues the email to
   the user and writes the audit row.
The same confirmation twice finds the row by its key: a finished refund is
reported again ("already done") and a pending one is resumed with the same key.

Pending rows count against what is left to refund, so two refunds at once
cannot together exceed the amount paid.

Why one file of over 500 lines: it is one concept, the refund of an invoice.
The three steps share the pending row, its key and the credit rule above, so
they read better together than split across modules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from workroom_app.billing import audit, clock, invoices, ledger, receipts, staff
from workroom_app.billing.invoice_pdf import money
from workroom_app.billing.payments.local import LocalGateway
from workroom_app.billing.payments.stripe import StripeGateway, StripeGatewayError
from workroom_app.billing.staff import StaffError
from workroom_app.billing.staff_roles import Permission
from workroom_app.db import write_session
from workroom_app.models import (
    Account,
    CreditGrant,
    Invoice,
    InvoiceRefund,
    InvoiceStatus,
    LedgerEntry,
    LocalCharge,
    OutboxEmail,
)

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
COUNTED = (PENDING, SUCCEEDED)
REFUNDABLE_STATUSES = (InvoiceStatus.PAID.value, InvoiceStatus.REFUNDED.value)
# "12", "12.5", "12.50", "1,234.50" (dollars typed into the form).
_AMOUNT_RE = re.compile(r"^([0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,9})(?:\.([0-9]{1,2}))?$")


# ------------------------------------------------------------------ reading


def _sum(session: Session, invoice_id: int, statuses: tuple[str, ...]) -> int:
    return int(
        session.execute(
            select(func.coalesce(func.sum(InvoiceRefund.amount_cents), 0)).where(
                InvoiceRefund.invoice_id == invoice_id, InvoiceRefund.status.in_(statuses)
            )
        ).scalar_one()
    )


def refunded_cents(session: Session, invoice_id: int) -> int:
    """What has been given back on this invoice (succeeded refunds)."""
    return _sum(session, invoice_id, (SUCCEEDED,))


def refunded_by_invoice(session: Session, invoice_ids: list[int]) -> dict[int, int]:
    if not invoice_ids:
        return {}
    rows = session.execute(
        select(InvoiceRefund.invoice_id, func.sum(InvoiceRefund.amount_cents))
        .where(InvoiceRefund.invoice_id.in_(invoice_ids), InvoiceRefund.status == SUCCEEDED)
        .group_by(InvoiceRefund.invoice_id)
    ).all()
    return {invoice_id: int(total) for invoice_id, total in rows}


def refund_label(invoice_status: str, amount_cents: int, refunded: int) -> str:
    """What Payment History and the PDF say about an invoice's status."""
    if refunded > 0 and refunded >= amount_cents or invoice_status == InvoiceStatus.REFUNDED:
        return "Refunded"
    if refunded > 0:
        return "Partly refunded"
    return invoice_status.replace("_", " ").capitalize()


def invoice_grant_ids(session: Session, invoice_id: int) -> list[int]:
    """The grants an invoice's payment created (its ledger rows name it)."""
    ids: list[int] = []
    for (draws,) in session.execute(
        select(LedgerEntry.draws).where(
            LedgerEntry.reference_type == "invoice",
            LedgerEntry.reference_id == str(invoice_id),
            LedgerEntry.amount > 0,
        )
    ):
        for gid, _ in json.loads(draws or "[]"):
            ids.append(int(gid))
    return ids


def unspent_credits(session: Session, account_id: int, grant_ids: list[int]) -> int:
    if not grant_ids:
        return 0
    now = clock.now()
    return int(
        session.execute(
            select(func.coalesce(func.sum(CreditGrant.amount_left), 0)).where(
                CreditGrant.id.in_(grant_ids),
                CreditGrant.account_id == account_id,
                CreditGrant.closed_at.is_(None),
                (CreditGrant.expires_at.is_(None)) | (CreditGrant.expires_at > now),
            )
        ).scalar_one()
    )


def credits_to_take(unspent: int, refund_cents: int, remaining_cents: int) -> int:
    """floor(unspent × r / R): the decision in the module docstring."""
    if unspent <= 0 or refund_cents <= 0 or remaining_cents <= 0:
        return 0
    return unspent * min(refund_cents, remaining_cents) // remaining_cents


# --------------------------------------------------------------- validation


def parse_amount(value: object) -> int:
    """The refund amount in cents: an int of cents, or dollars as typed ("12.50")."""
    message = "Enter the amount to refund in dollars and cents, like 12.50."
    if isinstance(value, bool):
        raise StaffError(message)
    if isinstance(value, str):
        text = value.strip().lstrip("$").strip()
        match = _AMOUNT_RE.match(text) if 0 < len(text) <= 20 else None
        if match is None:
            raise StaffError(message)
        dollars, cents = match.groups()
        value = int(dollars.replace(",", "")) * 100 + int((cents or "0").ljust(2, "0"))
    if not isinstance(value, int):
        raise StaffError(message)
    if value <= 0:
        raise StaffError("The refund must be more than zero.")
    return value


def _invoice_of(session: Session, account: Account, invoice_id: object) -> Invoice:
    invoice = session.get(Invoice, staff.check_id(invoice_id, "invoice"))
    if invoice is None or invoice.account_id != account.id:
        # Another account's invoice reads as not found: nothing to probe.
        raise StaffError("That invoice was not found on this account.")
    if invoice.status not in REFUNDABLE_STATUSES:
        raise StaffError("Only a paid invoice can be refunded; this payment did not go through.")
    if invoice.amount_cents <= 0:
        raise StaffError("This invoice charged nothing, so there is nothing to refund.")
    return invoice


def _too_much(invoice: Invoice, committed: int, amount: int) -> StaffError:
    left = invoice.amount_cents - committed
    if left <= 0:
        return StaffError(f"Invoice {invoice.number} has already been refunded in full.")
    return StaffError(
        f"At most {money(left, invoice.currency)} can be refunded on {invoice.number} "
        f"(paid {money(invoice.amount_cents, invoice.currency)}, already refunded "
        f"{money(committed, invoice.currency)}); you asked for {money(amount, invoice.currency)}."
    )


# ------------------------------------------------------------------ preview


@dataclass(frozen=True)
class RefundPreview:
    account_id: int
    email: str
    invoice_id: int
    invoice_number: str
    amount_cents: int
    currency: str
    refundable_cents: int
    credits_to_remove: int
    reason: str

    @property
    def summary(self) -> str:
        credits = (
            f"and remove {self.credits_to_remove:,} unspent credits"
            if self.credits_to_remove
            else "(no unspent credits to remove)"
        )
        return (
            f"Refund {money(self.amount_cents, self.currency)} of invoice {self.invoice_number} "
            f"to {self.email} {credits}."
        )


def preview(
    session: Session,
    actor_id: int,
    account_id: object,
    invoice_id: object,
    amount: object,
    reason: object,
) -> RefundPreview:
    staff.require_staff(session, actor_id, Permission.REFUND)
    account = staff.target_account(session, account_id)
    invoice = _invoice_of(session, account, invoice_id)
    cents = parse_amount(amount)
    text = staff.check_reason(reason)
    committed = _sum(session, invoice.id, COUNTED)
    if cents > invoice.amount_cents - committed:
        raise _too_much(invoice, committed, cents)
    remaining = invoice.amount_cents - refunded_cents(session, invoice.id)
    unspent = unspent_credits(session, account.id, invoice_grant_ids(session, invoice.id))
    return RefundPreview(
        account_id=account.id,
        email=account.email,
        invoice_id=invoice.id,
        invoice_number=_number(invoice),
        amount_cents=cents,
        currency=invoice.currency,
        refundable_cents=invoice.amount_cents - committed,
        credits_to_remove=credits_to_take(unspent, cents, remaining),
        reason=text,
    )


# ------------------------------------------------------------------- refund


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: int
    status: str  # succeeded, failed
    amount_cents: int
    currency: str
    invoice_number: str
    credits_removed: int
    # False when this request had been carried out before (nothing changed now).
    created: bool
    message: str


def refund_key(actor_id: int, request_id: str) -> str:
    return f"staff-refund:{actor_id}:{request_id}"


def _number(invoice: Invoice) -> str:
    # Only paid invoices are numbered, and only a paid invoice can be refunded: the fallback
    # is for a row edited by hand.
    return invoice.number or f"invoice {invoice.id}"


def _outcome(row: InvoiceRefund, number: str, *, created: bool) -> RefundOutcome:
    amount = money(row.amount_cents, row.currency)
    if row.status == SUCCEEDED:
        message = f"Refunded {amount} of {number}"
        message += (
            f"; {row.credits_removed:,} unspent credits removed." if row.credits_removed else "."
        )
        if not created:
            message = "This refund was already made: " + message
    else:
        message = f"The refund of {amount} on {number} failed: {row.error or 'the payment gateway refused it'}"
    return RefundOutcome(
        refund_id=row.id,
        status=row.status,
        amount_cents=row.amount_cents,
        currency=row.currency,
        invoice_number=number,
        credits_removed=row.credits_removed,
        created=created,
        message=message,
    )


def refund_invoice(
    engine: Any,
    actor_id: int,
    account_id: object,
    invoice_id: object,
    amount: object,
    *,
    reason: object,
    request_id: object,
    stripe_gateway: Any = None,
) -> RefundOutcome:
    """Refund part or all of a paid invoice (see the module docstring).

    Raises StaffError (nothing written) for anything refused. `stripe_gateway`
    lets tests pass a gateway wired to the Stripe stand-in."""
    # Step 1: check and reserve.
    with write_session(engine) as session:
        actor = staff.require_staff(session, actor_id, Permission.REFUND)
        account = staff.target_account(session, account_id)
        invoice = _invoice_of(session, account, invoice_id)
        cents = parse_amount(amount)
        text = staff.check_reason(reason)
        key = refund_key(actor.id, staff.check_request_id(request_id))
        invoices.lock_account(session, account.id)
        row = (
            session.execute(select(InvoiceRefund).where(InvoiceRefund.idempotency_key == key))
            .scalars()
            .first()
        )
        if row is not None:
            if row.invoice_id != invoice.id or row.amount_cents != cents:
                raise StaffError(
                    "This refund form was already used for another refund. Open it again."
                )
            if row.status != PENDING:
                audit.record(
                    session,
                    actor,
                    audit.REFUND,
                    result=audit.REPEAT,
                    account_id=account.id,
                    target=f"invoice:{invoice.id}",
                    reason=text,
                    request_key=key,
                    detail=f"Same refund confirmed again; nothing changed ({row.status}).",
                )
                return _outcome(row, _number(invoice), created=False)
        else:
            committed = _sum(session, invoice.id, COUNTED)
            if cents > invoice.amount_cents - committed:
                raise _too_much(invoice, committed, cents)
            row = InvoiceRefund(
                invoice_id=invoice.id,
                account_id=account.id,
                amount_cents=cents,
                currency=invoice.currency,
                reason=text,
                actor_id=actor.id,
                origin="staff",
                status=PENDING,
                gateway=invoice.gateway,
                idempotency_key=key,
                created_at=clock.now(),
            )
            session.add(row)
            session.flush()
        refund_id, gateway_name = row.id, invoice.gateway
        stripe_invoice_id, invoice_pk = invoice.gateway_ref, invoice.id

    # Step 2: the gateway (no lock held).
    gateway_ref: str | None = None
    error: str | None = None
    if gateway_name == "stripe":
        try:
            gw = stripe_gateway or StripeGateway()
            answer = gw.refund_invoice(
                stripe_invoice_id or "",
                cents,
                idempotency_key=key,
                metadata={
                    "workroom_refund_id": str(refund_id),
                    "workroom_invoice_id": str(invoice_pk),
                },
            )
            gateway_ref = answer.id
            if answer.status not in ("succeeded", "pending"):
                error = f"Stripe answered {answer.status}."
        except StripeGatewayError as exc:
            error = str(exc)
    else:
        gateway_ref = f"lre_{refund_id}"

    # Step 3: record what happened.
    with write_session(engine) as session:
        recorder = session.get(Account, actor_id)
        return _finish(session, refund_id, gateway_ref=gateway_ref, error=error, actor=recorder)


def _finish(
    session: Session,
    refund_id: int,
    *,
    gateway_ref: str | None,
    error: str | None,
    actor: Account | None,
) -> RefundOutcome:
    row = session.get(InvoiceRefund, refund_id)
    if row is None:  # written in step 1 and never deleted
        raise LookupError(f"refund {refund_id} is missing")
    invoices.lock_account(session, row.account_id)
    session.refresh(row)
    invoice = session.get(Invoice, row.invoice_id)
    if invoice is None:  # the foreign key keeps it
        raise LookupError(f"invoice {row.invoice_id} is missing")
    if row.status != PENDING:
        return _outcome(row, _number(invoice), created=False)
    if error is None and row.gateway == "local":
        charge = (
            session.execute(
                select(LocalCharge).where(LocalCharge.gateway_ref == (invoice.gateway_ref or ""))
            )
            .scalars()
            .first()
        )
        if charge is None or not charge.ok:
            error = "The local gateway has no successful charge for this invoice."
    now = clock.now()
    row.completed_at = now
    row.gateway_ref = gateway_ref
    if error is not None:
        row.status, row.error = FAILED, error[:500]
        session.add(row)
        session.flush()
        if actor is not None:
            audit.record(
                session,
                actor,
                audit.REFUND,
                result=audit.FAILED,
                account_id=row.account_id,
                target=f"invoice:{invoice.id}",
                reason=row.reason,
                request_key=row.idempotency_key,
                detail=f"Refund of {money(row.amount_cents, row.currency)} on {_number(invoice)} failed: {error}",
            )
        return _outcome(row, _number(invoice), created=True)
    _apply_success(session, row, invoice, actor_id=actor.id if actor is not None else None)
    outcome = _outcome(row, _number(invoice), created=True)
    if actor is not None:
        audit.record(
            session,
            actor,
            audit.REFUND,
            result=audit.DONE,
            account_id=row.account_id,
            target=f"invoice:{invoice.id}",
            reason=row.reason,
            request_key=row.idempotency_key,
            detail=outcome.message,
        )
    return outcome


def _apply_success(
    session: Session, row: InvoiceRefund, invoice: Invoice, *, actor_id: int | None
) -> None:
    """The refund went through: credits back, invoice marked, user told."""
    before = refunded_cents(session, invoice.id)
    remaining = invoice.amount_cents - before
    unspent_grants = invoice_grant_ids(session, invoice.id)
    take = credits_to_take(
        unspent_credits(session, row.account_id, unspent_grants), row.amount_cents, remaining
    )
    row.status = SUCCEEDED
    if take > 0:
        result = ledger.remove_from_grants(
            session,
            row.account_id,
            unspent_grants,
            take,
            reason=f"Invoice {invoice.number} refunded ({money(row.amount_cents, row.currency)}): {row.reason}"[
                :2000
            ],
            idempotency_key=f"invoice-refund-credits:{row.id}",
            actor_id=actor_id,
            reference_type="invoice_refund",
            reference_id=str(row.id),
        )
        row.credits_removed = -result.amount if result is not None else 0
    session.add(row)
    session.flush()
    if before + row.amount_cents >= invoice.amount_cents:
        invoices.mark_refunded(session, invoice.id)
        if invoice.gateway == "local" and invoice.gateway_ref:
            LocalGateway().refund(invoice.gateway_ref, session=session)
    _queue_email(session, row, invoice)


def _queue_email(session: Session, row: InvoiceRefund, invoice: Invoice) -> None:
    account = session.get(Account, row.account_id)
    if account is None:
        return
    key = f"refund:{row.id}"
    if (
        session.execute(select(OutboxEmail.id).where(OutboxEmail.dedupe_key == key)).first()
        is not None
    ):
        return
    amount = money(row.amount_cents, row.currency)
    lines = [
        f"We have refunded {amount} of invoice {invoice.number} to the card it was paid with.",
        "It can take 5 to 10 business days to show on your statement.",
    ]
    if row.credits_removed:
        lines.append(
            f"{row.credits_removed:,} unspent credits from that payment were removed from your balance."
        )
    lines += [
        "",
        "The updated invoice is attached. Payment History shows it as well.",
        "",
        "Workroom",
    ]
    session.add(
        OutboxEmail(
            account_id=account.id,
            to_address=account.email,
            subject=f"Refund of {amount} on invoice {invoice.number}",
            body_text="\n".join(lines),
            attachment_name=f"{invoice.number}.pdf",
            invoice_id=invoice.id,
            dedupe_key=key,
            status=receipts.PENDING,
            created_at=clock.now(),
        )
    )


# ----------------------------------------------------------- from Stripe


def record_gateway_refund(
    session: Session, invoice: Invoice, stripe_total_refunded: int, charge_id: str
) -> str | None:
    """charge.refunded: Stripe says `stripe_total_refunded` cents of this
    invoice's charge are refunded. Whatever we have not recorded (a refund made
    in Stripe's dashboard) is recorded now, with its credits; our own refunds
    (pending or done) are already counted, so nothing happens twice."""
    invoices.lock_account(session, invoice.account_id)
    committed = _sum(session, invoice.id, COUNTED)
    missing = min(stripe_total_refunded, invoice.amount_cents) - committed
    if missing <= 0:
        return None
    key = f"stripe-charge-refunded:{charge_id}:{stripe_total_refunded}"
    if session.execute(
        select(InvoiceRefund.id).where(InvoiceRefund.idempotency_key == key)
    ).first():
        return None
    row = InvoiceRefund(
        invoice_id=invoice.id,
        account_id=invoice.account_id,
        amount_cents=missing,
        currency=invoice.currency,
        reason="Refunded in Stripe",
        actor_id=None,
        origin="stripe",
        status=PENDING,
        gateway="stripe",
        gateway_ref=charge_id,
        idempotency_key=key,
        created_at=clock.now(),
        completed_at=clock.now(),
    )
    session.add(row)
    session.flush()
    _apply_success(session, row, invoice, actor_id=None)
    return f"recorded a refund of {money(missing, invoice.currency)} made in Stripe on {invoice.number}"
