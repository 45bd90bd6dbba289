"""Receipt emails: written to the outbox in the payment's own transaction, sent
later over SMTP.

Why an outbox: the payment and "a receipt is owed" commit together, so an SMTP
outage (or no SMTP configured at all, the default) delays a receipt and never
loses one. `send_pending` delivers what is waiting; a failure keeps the email
pending with the error and one more attempt counted.

The PDF is attached when the email is sent, rendered from the (immutable)
invoice, so the renewal transaction does not spend its lock time drawing PDFs.
Two senders at once (worker and CLI) do not send the same email twice: each
claims an email with a conditional UPDATE before sending it.
"""

from __future__ import annotations

import contextlib
import functools
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import Session, select

from workroom_app.billing import clock, formatting, invoices
from workroom_app.billing.invoice_pdf import money, render_invoice
from workroom_app.billing.payments.cards import BRAND_LABELS
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, AccountAlert, Invoice, OutboxEmail
from workroom_app.settings import Settings, get_settings

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
# A sender that died mid-send leaves its claim; after this another may retry.
CLAIM_TIMEOUT = timedelta(minutes=10)
MAX_ERROR_LENGTH = 500


def receipt_key(invoice_id: int) -> str:
    return f"receipt:invoice:{invoice_id}"


def _receipt_text(
    invoice: Invoice, plan_name: str | None, purchase: str | None = None, tz: ZoneInfo | None = None
) -> tuple[str, str]:
    amount = money(invoice.amount_cents, invoice.currency)
    subject = f"Your Workroom receipt {invoice.number} ({amount})"
    lines = [
        "Thank you for your payment.",
        "",
        f"Invoice: {invoice.number}",
        f"Amount paid: {amount}",
        f"Date: {formatting.format_date(invoice.created_at, tz)}",
    ]
    if plan_name:
        lines.append(f"Plan: {plan_name}")
    if purchase:  # a one-off purchase, e.g. a credit pack
        lines.append(purchase)
    if invoice.period_start and invoice.period_end:
        lines.append(
            f"Period: {formatting.format_date(invoice.period_start, tz)} to "
            f"{formatting.format_date(invoice.period_end, tz)}"
        )
    if invoice.card_brand and invoice.card_last4:
        brand = BRAND_LABELS.get(invoice.card_brand, invoice.card_brand.title())
        lines.append(f"Card: {brand} ending in {invoice.card_last4}")
    lines += [
        "",
        "The invoice is attached as a PDF. You can also download it any time from",
        "Subscription > Payment History.",
        f"Dates are in your time zone ({formatting.zone(tz).key}).",
        "",
        "Workroom",
    ]
    return subject, "\n".join(lines)


_O = OutboxEmail.__table__
_outbox_id_stmt = select(_O.c.id).where(_O.c.dedupe_key == bindparam("key"))


@functools.lru_cache(maxsize=4)
def insert_ignoring_duplicate(dialect: str) -> ReturningInsert[int]:
    """INSERT into the outbox that does nothing when the dedupe key exists (the id, or none)."""
    fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return fn(_O).on_conflict_do_nothing(index_elements=[_O.c.dedupe_key]).returning(_O.c.id)


def queue_receipt(
    session: Session,
    invoice: Invoice,
    *,
    to_address: str,
    plan_name: str | None = None,
    purchase: str | None = None,
    time_zone: ZoneInfo | None = None,  # the account's; looked up when not given
) -> int:
    """Put the receipt for a paid invoice in the outbox, once per invoice
    (its dedupe key); returns the outbox email's id."""
    key = receipt_key(invoice.id)
    if time_zone is None:
        time_zone = formatting.account_zone(session, invoice.account_id)
    subject, body = _receipt_text(invoice, plan_name, purchase, time_zone)
    conn = session.connection()
    new_id = conn.execute(
        insert_ignoring_duplicate(conn.dialect.name),
        {
            "account_id": invoice.account_id,
            "to_address": to_address,
            "subject": subject,
            "body_text": body,
            "attachment_name": f"{invoice.number}.pdf",
            "attachment": None,
            "invoice_id": invoice.id,
            "dedupe_key": key,
            "status": PENDING,
            "attempts": 0,
            "created_at": clock.now(),
        },
    ).scalar()
    if new_id is not None:
        return int(new_id)
    return int(conn.execute(_outbox_id_stmt, {"key": key}).scalar_one())


def attachment_bytes(session: Session, email: OutboxEmail) -> bytes | None:
    """The email's attachment: stored bytes, or the invoice PDF rendered now."""
    if email.attachment is not None:
        return email.attachment
    if email.invoice_id is None:
        return None

    invoice = session.get(Invoice, email.invoice_id)
    if invoice is None:
        return None
    account = session.get(Account, invoice.account_id)

    # invoice_refunds reaches this module again through staff, ledger and alerts: a top-level
    # import would be a cycle.
    from workroom_app.billing import invoice_refunds  # noqa: PLC0415

    return render_invoice(
        invoice,
        invoices.lines_of(session, invoice.id),
        account.email if account else "",
        formatting.zone(account.timezone if account else None),
        refunded_cents=invoice_refunds.refunded_cents(session, invoice.id),
    )


def _unsubscribe_headers(session: Session, email: OutboxEmail, msg: EmailMessage) -> None:
    """An alert email the user can turn off gets RFC 8058 one-click unsubscribe headers
    (billing/unsubscribe.py); receipts and other transactional emails do not."""
    from workroom_app.billing import unsubscribe  # noqa: PLC0415  (alerts import this module)

    if email.account_id is None or not (email.dedupe_key or "").startswith("alert:"):
        return
    kind = session.exec(
        select(AccountAlert.kind).where(AccountAlert.dedupe_key == email.dedupe_key[6:])
    ).first()
    if kind is None or not unsubscribe.unsubscribable(kind):
        return
    msg["List-Unsubscribe"] = f"<{unsubscribe.link(email.account_id, kind, session)}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def build_message(session: Session, email: OutboxEmail, mail_from: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = email.to_address
    msg["Subject"] = email.subject
    msg["Message-ID"] = make_msgid(idstring=f"outbox-{email.id}", domain="workroom.test")
    _unsubscribe_headers(session, email, msg)
    msg.set_content(email.body_text)
    data = attachment_bytes(session, email)
    if data is not None:
        msg.add_attachment(
            data,
            maintype="application",
            subtype="pdf",
            filename=email.attachment_name or "invoice.pdf",
        )
    return msg


# ------------------------------------------------------------------ sending


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    skipped_reason: str | None = None  # e.g. no SMTP configured


def smtp_configured(settings: Settings | None = None) -> bool:
    return bool((settings or get_settings()).smtp_host)


def _claim(engine: Engine, email_id: int) -> bool:
    now = clock.now()
    with write_session(engine) as session:
        result = session.connection().execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id == email_id,
                or_(
                    OutboxEmail.status == PENDING,
                    (OutboxEmail.status == SENDING)
                    & (OutboxEmail.claimed_at < now - CLAIM_TIMEOUT),
                ),
            )
            .values(status=SENDING, claimed_at=now)
        )
        return result.rowcount == 1


def _finish(engine: Engine, email_id: int, error: str | None) -> None:
    with write_session(engine) as session:
        email = session.get(OutboxEmail, email_id)
        if email is None:
            return
        if error is None:
            email.status = SENT
            email.sent_at = clock.now()
            email.last_error = None
        else:
            email.status = PENDING
            email.last_error = error[:MAX_ERROR_LENGTH]
        email.attempts += 1
        email.claimed_at = None
        session.add(email)


def _quit(smtp: smtplib.SMTP) -> None:
    """Close politely; a server already gone changes nothing for the emails."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()


def _claimed(session: Session, email_id: int) -> OutboxEmail:
    email = session.get(OutboxEmail, email_id)
    if email is None:  # claimed a moment ago, and outbox rows are never deleted
        raise LookupError(f"outbox email {email_id} is missing")
    return email


def _open_smtp(settings: Settings) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20)
    if settings.smtp_starttls:
        smtp.starttls(context=ssl.create_default_context())
    if settings.smtp_username:
        smtp.login(settings.smtp_username, settings.smtp_password)
    return smtp


def send_pending(
    engine: Engine, limit: int = 50, *, settings: Settings | None = None
) -> SendReport:
    """Send up to `limit` pending emails, oldest first, over one SMTP connection.

    No SMTP host configured: nothing is sent and the emails stay in the outbox.
    An email that fails stays pending with the error (and attempts + 1); the
    ones after it are still tried."""
    settings = settings or get_settings()
    report = SendReport()
    if not settings.smtp_host:
        report.skipped_reason = (
            "no SMTP server configured (WORKROOM_SMTP_HOST): emails stay in the outbox"
        )
        return report
    now = clock.now()
    with read_session(engine) as session:
        ids = list(
            session.exec(
                select(OutboxEmail.id)
                .where(
                    or_(
                        OutboxEmail.status == PENDING,
                        (OutboxEmail.status == SENDING)
                        & (OutboxEmail.claimed_at < now - CLAIM_TIMEOUT),
                    )
                )
                .order_by(OutboxEmail.id)
                .limit(max(1, int(limit)))
            )
        )
    smtp: smtplib.SMTP | None = None
    try:
        for email_id in ids:
            if not _claim(engine, email_id):
                continue  # another sender has it
            try:
                with read_session(engine) as session:
                    email = _claimed(session, email_id)
                    message = build_message(session, email, settings.mail_from)
                if smtp is None:
                    smtp = _open_smtp(settings)
                smtp.send_message(message)
            except (smtplib.SMTPException, OSError) as exc:
                error = f"{exc.__class__.__name__}: {exc}"
                _finish(engine, email_id, error)
                report.failed[email_id] = error
                if smtp is not None:
                    _quit(smtp)
                    smtp = None
                continue
            except BaseException:
                _finish(engine, email_id, "sending was interrupted")
                raise
            _finish(engine, email_id, None)
            report.sent.append(email_id)
    finally:
        if smtp is not None:
            _quit(smtp)
    return report


def send_one(engine: Engine, email_id: int, *, settings: Settings | None = None) -> str | None:
    """Send one pending email now (staff "send again"); None when sent, else the error."""
    settings = settings or get_settings()
    if not _claim(engine, email_id):
        return "it is not pending (sent meanwhile, or another sender has it)"
    try:
        with read_session(engine) as session:
            message = build_message(session, _claimed(session, email_id), settings.mail_from)
        smtp = _open_smtp(settings)
        try:
            smtp.send_message(message)
        finally:
            _quit(smtp)
    except (smtplib.SMTPException, OSError) as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        _finish(engine, email_id, error)
        return error
    except BaseException:
        _finish(engine, email_id, "sending was interrupted")
        raise
    _finish(engine, email_id, None)
    return None


# ------------------------------------------------------------ reading (CLI)


def list_outbox(
    session: Session, *, status: str | None = None, limit: int = 50
) -> list[OutboxEmail]:
    stmt = select(OutboxEmail).order_by(OutboxEmail.id.desc()).limit(max(1, int(limit)))
    if status:
        stmt = stmt.where(OutboxEmail.status == status)
    return list(session.exec(stmt))


def show_text(session: Session, email: OutboxEmail) -> str:
    data = attachment_bytes(session, email)
    lines = [
        f"Email #{email.id} ({email.status}, {email.attempts} attempt(s))",
        f"To: {email.to_address}",
        f"Subject: {email.subject}",
        f"Created: {formatting.format_datetime(email.created_at)} UTC",
    ]
    if email.sent_at:
        lines.append(f"Sent: {formatting.format_datetime(email.sent_at)} UTC")
    if email.last_error:
        lines.append(f"Last error: {email.last_error}")
    if email.attachment_name:
        size = f"{len(data):,} bytes" if data is not None else "missing"
        lines.append(f"Attachment: {email.attachment_name} ({size})")
    lines += ["", email.body_text]
    return "\n".join(lines)
