"""Staff refunds of paid invoices (billing/invoice_refunds.py), on the local
test gateway and on Stripe (the stand-in), with the credits the invoice
granted taken back by the documented rule, and charge.refunded / disputes
from Stripe's webhooks."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from tests.support.stripe_world import T0 as STRIPE_T0
from tests.support.stripe_world import make_world
from tests.support.subscriptions import (
    FAILS_ON_CHARGE,
    T0,
    at,
    balance,
    invoices_of,
    sign_up,
    subscribe,
)
from workroom_app.billing import accounts, clock, invoice_refunds, ledger
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.billing.staff import NotAllowed, StaffError
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    ActionType,
    InvoiceRefund,
    LedgerEntry,
    LocalCharge,
    OutboxEmail,
    PaymentDispute,
    Role,
    StaffAudit,
)


def _staff(engine, role=Role.FINANCE, email=None) -> int:
    with write_session(engine) as s:
        account = accounts.sign_up(
            s,
            email or f"{role}-{clock.now().timestamp()}@staff.test",
            "correct horse battery",
            role=role,
        )
        return account.id


def _spend(engine, account_id, amount, key):
    with write_session(engine) as s:
        ledger.debit(s, account_id, amount, feature="image", idempotency_key=key)


def _refund(engine, actor, account, invoice_id, amount, request_id="req-00000001", **kw):
    return invoice_refunds.refund_invoice(
        engine,
        actor,
        account,
        invoice_id,
        amount,
        reason=kw.pop("reason", "Customer asked, duplicate charge"),
        request_id=request_id,
        **kw,
    )


def _rows(engine, model, **where):
    with read_session(engine) as s:
        stmt = select(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return list(s.exec(stmt))


def _state(engine, account):
    """What a refusal must leave untouched."""
    return (
        balance(engine, account),
        len(_rows(engine, LedgerEntry, account_id=account)),
        len(_rows(engine, InvoiceRefund)),
        [(i.status, i.amount_cents) for i in invoices_of(engine, account)],
        len(_rows(engine, OutboxEmail, account_id=account)),
    )


def _no_ledger_problems(engine):
    with read_session(engine) as s:
        assert check_ledger(s) == []


# ------------------------------------------------------------------ local gateway


def test_full_refund_takes_back_every_unspent_credit_marks_the_invoice_and_tells_the_user(engine):
    with at(T0):
        finance = _staff(engine)
        user = sign_up(engine)
        subscribe(engine, user, "pro")  # $30, 3,000 credits
        _spend(
            engine, user, 1000, "spend-1"
        )  # 50 trial... drawn soonest-expiring first: plan credits
        [invoice] = invoices_of(engine, user)
        before = balance(engine, user)
        outcome = _refund(engine, finance, user, invoice.id, "30.00")
    assert outcome.status == "succeeded" and outcome.created
    assert outcome.credits_removed == 2000  # 3,000 granted − 1,000 spent
    assert balance(engine, user) == before - 2000
    [inv] = invoices_of(engine, user)
    assert inv.status == "refunded"
    [row] = _rows(engine, LedgerEntry, account_id=user, reference_type="invoice_refund")
    assert (row.action_type, row.amount, row.actor_id) == (
        ActionType.STAFF_ADJUSTMENT,
        -2000,
        finance,
    )
    assert "Customer asked" in row.reason
    [charge] = _rows(engine, LocalCharge, gateway_ref=inv.gateway_ref)
    assert charge.refunded_at is not None
    emails = [
        e for e in _rows(engine, OutboxEmail, account_id=user) if e.dedupe_key.startswith("refund:")
    ]
    assert len(emails) == 1 and "$30.00" in emails[0].subject and emails[0].invoice_id == inv.id
    [audit_row] = _rows(engine, StaffAudit, action="refund_invoice")
    assert (audit_row.actor_id, audit_row.account_id, audit_row.result) == (finance, user, "done")
    assert audit_row.reason == "Customer asked, duplicate charge" and "$30.00" in audit_row.detail
    _no_ledger_problems(engine)


def test_partial_refunds_take_back_the_same_fraction_of_what_is_unspent_and_never_more_than_paid(
    engine,
):
    with at(T0):
        finance = _staff(engine)
        user = sign_up(engine)
        subscribe(engine, user, "pro")
        _spend(engine, user, 1000, "spend-1")
        [invoice] = invoices_of(engine, user)
        first = _refund(
            engine, finance, user, invoice.id, "7.50", request_id="req-first-1"
        )  # 1/4 of $30
        assert first.credits_removed == 2000 // 4
        with read_session(engine) as s:
            assert (
                invoice_refunds.refund_label(
                    invoice.status, 3000, invoice_refunds.refunded_cents(s, invoice.id)
                )
                == "Partly refunded"
            )
        assert invoices_of(engine, user)[0].status == "paid"
        with pytest.raises(StaffError, match=r"At most \$22.50"):
            _refund(engine, finance, user, invoice.id, "22.51", request_id="req-too-much")
        rest = _refund(engine, finance, user, invoice.id, "22.50", request_id="req-rest-01")
        # All that is still unspent of the invoice's grant: 1,500.
        assert rest.credits_removed == 1500
        assert invoices_of(engine, user)[0].status == "refunded"
        with pytest.raises(StaffError, match="already been refunded in full"):
            _refund(engine, finance, user, invoice.id, "0.01", request_id="req-more-01")
    _no_ledger_problems(engine)


def test_the_same_confirmation_twice_refunds_once(engine):
    with at(T0):
        finance = _staff(engine)
        user = sign_up(engine)
        subscribe(engine, user, "starter")
        [invoice] = invoices_of(engine, user)
        first = _refund(engine, finance, user, invoice.id, "4.00")
        again = _refund(engine, finance, user, invoice.id, "4.00")
        assert first.created and not again.created and again.refund_id == first.refund_id
        assert "already" in again.message
        assert len(_rows(engine, InvoiceRefund)) == 1
        assert len(_rows(engine, LedgerEntry, reference_type="invoice_refund")) == 1
        assert [a.result for a in _rows(engine, StaffAudit, action="refund_invoice")] == [
            "done",
            "repeat",
        ]
        # The same form id reused for a different amount is refused.
        with pytest.raises(StaffError, match="already used"):
            _refund(engine, finance, user, invoice.id, "5.00")


@pytest.mark.parametrize(
    "amount", ["-5", "0", "0.00", "1.234", "abc", "", "1e3", -500, 0, 1.5, True, None]
)
def test_a_forged_amount_is_refused_and_changes_nothing(sqlite_engine, amount):
    engine = sqlite_engine
    with at(T0):
        finance = _staff(engine)
        user = sign_up(engine)
        subscribe(engine, user, "starter")
        [invoice] = invoices_of(engine, user)
        before = _state(engine, user)
        with pytest.raises(StaffError):
            _refund(engine, finance, user, invoice.id, amount)
        assert _state(engine, user) == before


def test_another_accounts_invoice_a_failed_payment_and_a_role_without_refunds_are_refused(engine):
    with at(T0):
        finance = _staff(engine)
        support = _staff(engine, Role.SUPPORT)
        user = sign_up(engine)
        other = sign_up(engine)
        subscribe(engine, user, "starter")
        subscribe(engine, other, "starter")
        failing = sign_up(engine)
        subscribe(engine, failing, "starter", card=FAILS_ON_CHARGE)
        [failed_invoice] = [i for i in invoices_of(engine, failing) if i.status == "failed"]
        [invoice] = invoices_of(engine, user)
        [other_invoice] = invoices_of(engine, other)
        before = (_state(engine, user), _state(engine, other), _state(engine, failing))
        with pytest.raises(StaffError, match="not found on this account"):
            _refund(engine, finance, user, other_invoice.id, "1.00")
        with pytest.raises(StaffError, match="Only a paid invoice"):
            _refund(engine, finance, failing, failed_invoice.id, "1.00")
        with pytest.raises(NotAllowed, match="finance and admin"):
            _refund(engine, support, user, invoice.id, "1.00")
        with pytest.raises(StaffError):
            _refund(engine, user, other, other_invoice.id, "1.00")  # not staff at all
        with pytest.raises(StaffError):
            _refund(engine, finance, user, invoice.id, "1.00", reason="")
        assert (_state(engine, user), _state(engine, other), _state(engine, failing)) == before


def test_refund_preview_says_what_will_happen_and_writes_nothing(sqlite_engine):
    engine = sqlite_engine
    with at(T0):
        finance = _staff(engine)
        user = sign_up(engine)
        subscribe(engine, user, "pro")
        [invoice] = invoices_of(engine, user)
        before = _state(engine, user)
        with read_session(engine) as s:
            p = invoice_refunds.preview(
                s, finance, user, invoice.id, "15", "Partial goodwill refund"
            )
        assert (p.amount_cents, p.credits_to_remove, p.refundable_cents) == (1500, 1500, 3000)
        assert "Refund $15.00 of invoice" in p.summary and "1,500 unspent credits" in p.summary
        assert _state(engine, user) == before


def test_the_pdf_says_refunded(sqlite_engine):
    engine = sqlite_engine
    with at(T0):
        finance = _staff(engine)
        user = sign_up(engine)
        subscribe(engine, user, "starter")
        [invoice] = invoices_of(engine, user)
        _refund(engine, finance, user, invoice.id, "2.50")
        from workroom_app.billing import invoices

        with read_session(engine) as s:
            name, pdf = invoices.pdf_for_viewer(s, invoice.id, user)
        import re as _re
        import zlib  # noqa: E401

        text = b"".join(
            zlib.decompress(m) for m in _re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, _re.S)
        )
        assert b"Partly refunded" in text and b"2.50" in text


# ------------------------------------------------------------------------ Stripe


@pytest.fixture
def stripe_world(engine):
    with clock.pinned(STRIPE_T0):
        yield make_world(engine)


def test_stripe_refund_uses_an_idempotency_key_and_charge_refunded_changes_nothing_more(
    stripe_world,
):
    w = stripe_world
    finance = _staff(w.engine)
    user = w.sign_up("stripe-user@example.com")
    w.checkout(user, "pro")
    w.deliver_pending()
    [invoice] = w.invoices(user)
    assert invoice.gateway == "stripe"
    before = w.balance(user)
    outcome = _refund(w.engine, finance, user, invoice.id, "15.00", stripe_gateway=w.gateway)
    assert outcome.status == "succeeded" and outcome.credits_removed == 1500
    [request] = w.standin.requests_to("POST", "/v1/refunds")
    assert request.idempotency_key and request.params["amount"] == "1500"
    # Stripe tells us about it (twice): nothing is recorded again.
    events = w.standin.take_events("charge.refunded")
    assert len(events) == 1
    outcomes = w.deliver(events + events)
    assert [o.outcome for o in outcomes] == ["processed", "duplicate"]
    assert len(_rows(w.engine, InvoiceRefund)) == 1
    assert w.balance(user) == before - 1500
    # The same confirmation again: Stripe is asked with the same key or not at all; one refund.
    again = _refund(w.engine, finance, user, invoice.id, "15.00", stripe_gateway=w.gateway)
    assert not again.created
    assert sum(c.get("amount_refunded", 0) for c in w.standin.charges.values()) == 1500
    _no_ledger_problems(w.engine)


def test_a_refund_made_in_stripes_dashboard_is_recorded_once_with_its_credits(stripe_world):
    w = stripe_world
    user = w.sign_up("dash@example.com")
    w.checkout(user, "pro")
    w.deliver_pending()
    [invoice] = w.invoices(user)
    charge_id = w.standin.charge_of_invoice(invoice.gateway_ref)
    before = w.balance(user)
    w.standin.refund_in_dashboard(charge_id, 3000)
    events = w.standin.take_events("charge.refunded")
    w.deliver(events)
    # A redelivery under a new event id (Stripe resends) changes nothing either.
    copy = json.loads(events[0].payload)
    copy["id"] = "evt_copy_1"
    payload = json.dumps(copy)
    w.processor.process(payload.encode(), w.standin.sign(payload))
    [row] = _rows(w.engine, InvoiceRefund)
    assert (row.origin, row.status, row.amount_cents) == ("stripe", "succeeded", 3000)
    assert w.balance(user) == before - 3000
    assert w.invoices(user)[0].status == "refunded"
    _no_ledger_problems(w.engine)


def test_stripe_disputes_are_kept_with_their_latest_status(stripe_world):
    w = stripe_world
    user = w.sign_up("dispute@example.com")
    w.checkout(user, "starter")
    w.deliver_pending()
    [invoice] = w.invoices(user)
    charge_id = w.standin.charge_of_invoice(invoice.gateway_ref)
    dispute = w.standin.open_dispute(charge_id)
    w.deliver(w.standin.take_events("charge.dispute.created"))
    [row] = _rows(w.engine, PaymentDispute)
    assert (row.account_id, row.invoice_id, row.status, row.amount_cents) == (
        user,
        invoice.id,
        "needs_response",
        1000,
    )
    w.standin.close_dispute(dispute["id"], "lost")
    closed = w.standin.take_events("charge.dispute.closed")
    w.deliver(closed + closed)
    [row] = _rows(w.engine, PaymentDispute)
    assert row.status == "lost" and row.closed_at is not None
