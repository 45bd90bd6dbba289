"""Invoices: numbers unique per account (also under concurrency), owner-only
access, and the PDF (PRODUCT_RULES §6)."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from pypdf import PdfReader

from tests.support.subscriptions import (
    DECLINED,
    FAILS_ON_CHARGE,
    INSUFFICIENT,
    T0,
    VISA,
    change,
    invoices_of,
    save_card,
    sign_up,
    subscribe,
)
from workroom_app.billing import accounts, clock, invoices
from workroom_app.billing.invoices import InvoiceError, LineItem
from workroom_app.db import read_session, write_session
from workroom_app.models import Role


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_invoice_numbers_are_sequential_and_unique_per_account(engine):
    with clock.pinned(T0):
        a, b = sign_up(engine), sign_up(engine)
        subscribe(engine, a, "starter")
        subscribe(engine, b, "pro")
        change(engine, a, "pro")
    assert [i.number for i in invoices_of(engine, a)] == [f"WR-{a}-0001", f"WR-{a}-0002"]
    assert [i.number for i in invoices_of(engine, b)] == [f"WR-{b}-0001"]


def test_concurrent_invoices_of_one_account_get_distinct_numbers(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
    n = 6
    barrier = threading.Barrier(n)
    errors = []

    def write(i):
        clock.set_pinned(T0)
        barrier.wait()
        try:
            with write_session(engine) as s:
                invoices.create_invoice(
                    s,
                    a,
                    kind="renewal",
                    status="paid",
                    amount_cents=100,
                    idempotency_key=f"k{i}",
                    lines=[LineItem("x", 100)],
                )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    numbers = [i.number for i in invoices_of(engine, a)]
    assert sorted(numbers) == [f"WR-{a}-{k:04d}" for k in range(1, n + 1)]


def test_invoice_input_is_checked(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
        with write_session(engine) as s:
            with pytest.raises(InvoiceError):
                invoices.create_invoice(
                    s,
                    a,
                    kind="renewal",
                    status="paid",
                    amount_cents=-1,
                    idempotency_key="n",
                    lines=[LineItem("x", -1)],
                )
            with pytest.raises(InvoiceError):
                invoices.create_invoice(
                    s,
                    a,
                    kind="renewal",
                    status="weird",
                    amount_cents=1,
                    idempotency_key="w",
                    lines=[LineItem("x", 1)],
                )
            with pytest.raises(InvoiceError, match="add up"):
                invoices.create_invoice(
                    s,
                    a,
                    kind="renewal",
                    status="paid",
                    amount_cents=5,
                    idempotency_key="s",
                    lines=[LineItem("x", 1)],
                )


def test_the_pdf_shows_number_amount_card_status_period_and_bill_to(engine):
    with clock.pinned(T0):
        a = sign_up(engine, "pdf@example.com")
        subscribe(engine, a, "pro")
    inv = invoices_of(engine, a)[0]
    with read_session(engine) as s:
        name, data = invoices.pdf_for_viewer(s, inv.id, a)
    assert name == f"{inv.number}.pdf" and data.startswith(b"%PDF")
    text = _pdf_text(data)
    for needle in (
        inv.number,
        "$30.00",
        "Visa ending in 4242",
        "Paid",
        "pdf@example.com",
        "Jan 31, 2026",
        "Feb 28, 2026",
        "Workroom",
        "Pro plan",
    ):
        assert needle in text, needle


def test_a_failed_renewal_keeps_its_reason_but_has_no_number_and_no_pdf(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "starter")
        save_card(engine, a, FAILS_ON_CHARGE)
    with clock.pinned(T0 + timedelta(days=28)):
        from workroom_app.billing import subscriptions

        subscriptions.renew_due(engine)
    failed = invoices_of(engine, a)[-1]
    assert (failed.status, failed.failure_reason) == ("failed", "Your card was declined.")
    assert (failed.seq, failed.number) == (None, None)
    with read_session(engine) as s:
        assert invoices.get_for_viewer(s, failed.id, a).id == failed.id  # still on Payment History
        assert invoices.pdf_for_viewer(s, failed.id, a) is None  # but not an invoice


def test_invoice_numbers_stay_gapless_with_declines_in_between(engine):
    """Declined checkout, upgrade and renewal attempts between payments take no
    number: the paid invoices are numbered 0001, 0002, 0003 with no gap."""
    from workroom_app.billing import subscriptions

    with clock.pinned(T0):
        a = sign_up(engine)
        assert not subscribe(engine, a, "starter", card=DECLINED).ok
        assert not subscribe(engine, a, "starter", card=INSUFFICIENT).ok
        assert subscribe(engine, a, "starter").ok  # 0001
        save_card(engine, a, FAILS_ON_CHARGE)
        assert not change(engine, a, "pro").ok  # declined upgrade
        save_card(engine, a, VISA)
        assert change(engine, a, "pro").ok  # 0002
        save_card(engine, a, FAILS_ON_CHARGE)
    with clock.pinned(T0 + timedelta(days=28)):
        assert subscriptions.renew_due(engine).failed == 1  # declined renewal
        save_card(engine, a, VISA)
    with clock.pinned(T0 + timedelta(days=29)):
        assert subscriptions.renew_due(engine).renewed == 1  # the retry pays: 0003
    rows = invoices_of(engine, a)
    assert [r.status for r in rows] == [
        "failed",
        "failed",
        "paid",
        "failed",
        "paid",
        "failed",
        "paid",
    ]
    paid = [r for r in rows if r.status == "paid"]
    assert [r.number for r in paid] == [f"WR-{a}-{k:04d}" for k in (1, 2, 3)]
    assert [r.seq for r in paid] == [1, 2, 3]
    assert all(r.number is None and r.seq is None for r in rows if r.status == "failed")
    with read_session(engine) as s:
        history = invoices.list_for_account(s, a)  # Payment History: every attempt, newest first
        assert [r.id for r in history] == [r.id for r in reversed(rows)]
        assert all(
            invoices.pdf_for_viewer(s, r.id, a) is None for r in rows if r.status == "failed"
        )
        assert all(invoices.pdf_for_viewer(s, r.id, a) is not None for r in paid)


def test_only_the_owner_or_staff_can_see_an_invoice(engine):
    with clock.pinned(T0):
        owner, other = sign_up(engine), sign_up(engine)
        with write_session(engine) as s:
            staff = accounts.sign_up(
                s, "staff@example.com", "correct horse battery", role=Role.STAFF
            ).id
        subscribe(engine, owner, "pro")
    inv = invoices_of(engine, owner)[0]
    with read_session(engine) as s:
        assert invoices.get_for_viewer(s, inv.id, owner).id == inv.id
        assert invoices.get_for_viewer(s, inv.id, other) is None
        assert invoices.pdf_for_viewer(s, inv.id, other) is None
        assert invoices.get_for_viewer(s, inv.id, staff).id == inv.id
        for bad_id in (inv.id + 999, -1, "abc", None, True, "1 or 1=1"):
            assert invoices.get_for_viewer(s, bad_id, owner) is None
        assert [i.id for i in invoices.list_for_account(s, owner)] == [inv.id]
        assert invoices.list_for_account(s, other) == []


def test_mark_refunded(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        inv = invoices_of(engine, a)[0]
        with write_session(engine) as s:
            assert invoices.mark_refunded(s, inv.id).status == "refunded"
            assert invoices.mark_refunded(s, inv.id).status == "refunded"
    assert invoices_of(engine, a)[0].status == "refunded"
