"""Invoices: one per payment attempt (paid or failed), numbered per account.

Numbers are WR-<account id>-<sequence, 4+ digits>, given to paid invoices only:
a failed payment attempt keeps its row (with the reason, for Payment History)
but takes no number and has no PDF, so the numbers of an account's invoices
are gapless. The sequence is taken while
the account's balance row is locked (the same per-account lock every credit
change takes; on SQLite the write transaction holds the database lock), and a
unique (account, seq) index backs it, so two payments at once can never get
the same number.

Invoices are written only by the subscription engine and the gateways' record
functions; reading them (Payment History, PDF download) goes through the
owner checks here, so another user's invoice id reads as "not found".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import clock, formatting, ledger
from workroom_app.billing.invoice_pdf import render_invoice
from workroom_app.billing.staff_roles import is_staff_role
from workroom_app.models import (
    Account,
    AccountBalance,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
)

NUMBER_PREFIX = "WR"


class InvoiceError(Exception):
    """A request about an invoice that cannot be met; the message is user-readable."""


@dataclass(frozen=True)
class LineItem:
    description: str
    amount_cents: int
    quantity: int = 1


def format_number(account_id: int, seq: int) -> str:
    return f"{NUMBER_PREFIX}-{account_id}-{seq:04d}"


_B = AccountBalance.__table__
_I = Invoice.__table__
_IL = InvoiceLine.__table__
_lock_stmt = (
    core_select(_B.c.account_id).where(_B.c.account_id == bindparam("account_id")).with_for_update()
)
_key_stmt = core_select(_I.c.id, _I.c.account_id).where(_I.c.idempotency_key == bindparam("key"))
_max_seq_stmt = core_select(func.max(_I.c.seq)).where(_I.c.account_id == bindparam("account_id"))
_insert_stmt = insert(_I).returning(_I.c.id)
_insert_line_stmt = insert(_IL)
_LOCKS = "workroom_locked_accounts"


def lock_account(session: Session, account_id: int) -> None:
    """Take the per-account lock (the balance row, as the ledger does).

    Remembered per transaction, so the several steps of one payment lock once.
    Whoever rolls back to a savepoint after locking must call forget_locks()
    (PostgreSQL releases locks taken inside a savepoint that is rolled back)."""
    txn = id(session.get_transaction())
    held = session.info.setdefault(_LOCKS, set())
    if (txn, account_id) in held:
        return
    conn = session.connection()
    if conn.execute(_lock_stmt, {"account_id": account_id}).first() is None:
        ledger.open_account(session, account_id)
        conn.execute(_lock_stmt, {"account_id": account_id}).first()
    held.add((txn, account_id))


def forget_locks(session: Session) -> None:
    session.info.pop(_LOCKS, None)


def find_by_key(session: Session, idempotency_key: str) -> Invoice | None:
    row = session.connection().execute(_key_stmt, {"key": idempotency_key}).first()
    return session.get(Invoice, row.id) if row is not None else None


def create_invoice(
    session: Session,
    account_id: int,
    *,
    kind: str,
    status: str,
    amount_cents: int,
    idempotency_key: str,
    lines: Sequence[LineItem],
    currency: str = "usd",
    subscription_id: int | None = None,
    plan_key: str | None = None,
    card_brand: str | None = None,
    card_last4: str | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    failure_reason: str | None = None,
    failure_code: str | None = None,
    gateway: str = "local",
    gateway_ref: str | None = None,
) -> tuple[Invoice, bool]:
    """Write an invoice and its lines; idempotent on `idempotency_key`.

    Returns (invoice, created). The caller's transaction must be a write one.
    """
    if status not in {s.value for s in InvoiceStatus}:
        raise InvoiceError(f"Unknown invoice status {status!r}.")
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents < 0:
        raise InvoiceError("An invoice amount must be a whole, non-negative number of cents.")
    if sum(line.amount_cents * line.quantity for line in lines) != amount_cents:
        raise InvoiceError("The invoice lines do not add up to its amount.")
    if not lines:
        raise InvoiceError("An invoice needs at least one line.")
    lock_account(session, account_id)
    conn = session.connection()
    row = conn.execute(_key_stmt, {"key": idempotency_key}).first()
    if row is not None:
        if row.account_id != account_id:
            raise InvoiceError("This payment belongs to another account.")
        existing = session.get(Invoice, row.id)
        assert existing is not None  # the key's row was just read in this transaction
        return existing, False
    if status == InvoiceStatus.FAILED:
        seq, number = None, None  # a declined attempt is not an invoice: no number
    else:
        seq = (conn.execute(_max_seq_stmt, {"account_id": account_id}).scalar() or 0) + 1
        number = format_number(account_id, seq)
    # Core inserts: this runs once per renewal, 100,000 times in a batch run.
    invoice = Invoice(
        account_id=account_id,
        subscription_id=subscription_id,
        seq=seq,
        number=number,
        kind=kind,
        status=status,
        amount_cents=amount_cents,
        currency=currency.lower(),
        card_brand=card_brand,
        card_last4=card_last4,
        period_start=period_start,
        period_end=period_end,
        failure_reason=failure_reason,
        failure_code=failure_code,
        plan_key=plan_key,
        gateway=gateway,
        gateway_ref=gateway_ref,
        idempotency_key=idempotency_key,
        created_at=clock.now(),
    )
    values = {c.name: getattr(invoice, c.name) for c in _I.columns if c.name != "id"}
    invoice.id = conn.execute(_insert_stmt, values).scalar_one()
    notifications.announce(session, account_id, notifications.PAYMENT)
    conn.execute(
        _insert_line_stmt,
        [
            {
                "invoice_id": invoice.id,
                "description": line.description,
                "quantity": line.quantity,
                "amount_cents": line.amount_cents,
            }
            for line in lines
        ],
    )
    return invoice, True


def mark_refunded(session: Session, invoice_id: int) -> Invoice:
    """A paid invoice whose money went back (status "refunded"); once."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise InvoiceError("No such invoice.")
    if invoice.status == InvoiceStatus.REFUNDED:
        return invoice
    if invoice.status != InvoiceStatus.PAID:
        raise InvoiceError("Only a paid invoice can be refunded.")
    session.execute(
        update(Invoice).where(Invoice.id == invoice_id).values(status=InvoiceStatus.REFUNDED.value)
    )
    session.refresh(invoice)
    return invoice


def lines_of(session: Session, invoice_id: int) -> list[InvoiceLine]:
    return list(
        session.exec(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.id)
        )
    )


def list_for_account(
    session: Session, account_id: int, *, limit: int = 50, offset: int = 0
) -> list[Invoice]:
    """Payment History: newest first, paginated in the database."""
    limit = max(1, min(int(limit), 200))
    offset = max(0, int(offset))
    return list(
        session.exec(
            select(Invoice)
            .where(Invoice.account_id == account_id)
            # By time: failed attempts have no sequence number.
            .order_by(Invoice.created_at.desc(), Invoice.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def count_for_account(session: Session, account_id: int) -> int:
    return session.exec(select(func.count()).where(Invoice.account_id == account_id)).one()


def get_for_viewer(
    session: Session, invoice_id: object, viewer_account_id: object
) -> Invoice | None:
    """The invoice if `viewer` may see it (its owner, or staff), else None.

    Callers answer None with 404 whatever the reason (no such invoice, someone
    else's), so an id cannot be probed."""
    wanted, viewer_id = _positive_id(invoice_id), _positive_id(viewer_account_id)
    if wanted is None or viewer_id is None:
        return None
    try:
        iid = int(cast(Any, invoice_id))
        vid = int(cast(Any, viewer_account_id))
    except (TypeError, ValueError):
        return None
    if iid <= 0 or vid <= 0:
        return None
    invoice = session.get(Invoice, iid)
    if invoice is None:
        return None
    if invoice.account_id == vid:
        return invoice
    viewer = session.get(Account, vid)

    if viewer is not None and is_staff_role(viewer.role):
        return invoice
    return None


def _positive_id(value: object) -> int | None:
    """A database id from a URL or a form (digits, or an int), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number > 0 else None


def pdf_for_viewer(
    session: Session, invoice_id: object, viewer_account_id: object
) -> tuple[str, bytes] | None:
    """(filename, PDF bytes) for Download PDF, or None (answer 404).

    A failed payment attempt is not an invoice: it has no number and no PDF."""
    invoice = get_for_viewer(session, invoice_id, viewer_account_id)
    if invoice is None or invoice.number is None or invoice.status == InvoiceStatus.FAILED:
        return None
    account = session.get(Account, invoice.account_id)
    # invoice_refunds imports this module, so this import waits until it is needed.
    from workroom_app.billing.invoice_refunds import refunded_cents  # noqa: PLC0415

    pdf = render_invoice(
        invoice,
        lines_of(session, invoice.id),
        account.email if account else "",
        formatting.zone(account.timezone if account else None),
        refunded_cents=refunded_cents(session, invoice.id),
    )
    return f"{invoice.number}.pdf", pdf
