"""Receipts: an outbox row in the payment's transaction, sent over SMTP to a
real (aiosmtpd) server on localhost; an outage keeps them (PRODUCT_RULES §6)."""

from __future__ import annotations

import io
import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pypdf import PdfReader

from tests.support.subscriptions import (
    DECLINED,
    T0,
    invoices_of,
    outbox_of,
    sign_up,
    subscribe,
)
from workroom_app.billing import clock, receipts
from workroom_app.db import read_session
from workroom_app.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _settings(port: int, **kw) -> Settings:
    base = dict(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_username="mailer",
        smtp_password="s3cret",
        mail_from="Workroom <billing@workroom.test>",
    )
    base.update(kw)
    return Settings(**base)


def test_a_receipt_with_the_invoice_pdf_is_sent_after_each_successful_payment(engine, smtp_server):
    inbox, port = smtp_server
    with clock.pinned(T0):
        a = sign_up(engine, "ann@example.com")
        subscribe(engine, a, "pro")
        report = receipts.send_pending(engine, settings=_settings(port))
        assert len(report.sent) == 1 and not report.failed
        assert receipts.send_pending(engine, settings=_settings(port)).sent == []  # sent once
    inv = invoices_of(engine, a)[0]
    [(mail_from, rcpts, raw)] = inbox.messages
    assert rcpts == ["ann@example.com"] and mail_from == "billing@workroom.test"
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == f"Your Workroom receipt {inv.number} ($30.00)"
    assert "Amount paid: $30.00" in msg.get_body(("plain",)).get_content()
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == f"{inv.number}.pdf"
    assert att.get_content_type() == "application/pdf"
    pdf = att.get_content()
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert inv.number in text and "$30.00" in text
    [row] = outbox_of(engine, a)
    assert (row.status, row.attempts) == ("sent", 1) and row.sent_at is not None


def test_a_failed_payment_sends_no_receipt(engine, smtp_server):
    inbox, port = smtp_server
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro", card=DECLINED)
        receipts.send_pending(engine, settings=_settings(port))
    assert outbox_of(engine, a) == [] and inbox.messages == []


def test_an_smtp_outage_keeps_the_email_pending_with_the_error(engine, smtp_server):
    inbox, port = smtp_server
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        dead = _settings(_free_port())  # nothing listens there
        report = receipts.send_pending(engine, settings=dead)
        assert report.sent == [] and len(report.failed) == 1
        [row] = outbox_of(engine, a)
        assert (row.status, row.attempts) == ("pending", 1) and row.last_error
        receipts.send_pending(engine, settings=dead)
        [row] = outbox_of(engine, a)
        assert (row.status, row.attempts) == ("pending", 2)
        assert len(receipts.send_pending(engine, settings=_settings(port)).sent) == 1
    [row] = outbox_of(engine, a)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert len(inbox.messages) == 1


def test_with_no_smtp_configured_emails_stay_in_the_outbox_and_can_be_read(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        report = receipts.send_pending(engine, settings=Settings(smtp_host=""))
    assert report.sent == [] and "no SMTP" in report.skipped_reason
    [row] = outbox_of(engine, a)
    assert row.status == "pending" and row.attempts == 0
    with read_session(engine) as s:
        text = receipts.show_text(s, row)
        assert "Subject: Your Workroom receipt" in text and ".pdf (" in text
        assert [r.id for r in receipts.list_outbox(s)] == [row.id]


def test_a_receipt_is_queued_once_per_invoice(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        from workroom_app.db import write_session
        from workroom_app.models import Invoice

        with write_session(engine) as s:
            inv = s.get(Invoice, invoices_of(engine, a)[0].id)
            again = receipts.queue_receipt(s, inv, to_address="x@example.com")
    [row] = outbox_of(engine, a)
    assert again == row.id and row.to_address != "x@example.com"
