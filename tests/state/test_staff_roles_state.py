"""Staff roles through the real event path (tests/support/reflex_events.py): a role
that may not do something does not get the control, and the server refuses it
anyway when a browser sends the event regardless; refusals are audited, and a
finance member's refund works end to end, once."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.support.pages import NOW, StaffTab, make_user, pick, review, runner
from tests.support.subscriptions import VISA
from workroom_app.billing import clock, subscriptions
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, Invoice, InvoiceRefund, LedgerEntry, Role, StaffAudit
from workroom_app.state.staff import StaffState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(StaffTab, now=NOW)


def _paid_user(engine, email="ann@example.com"):
    uid, _ = make_user(engine, email)
    with clock.pinned(NOW), write_session(engine) as s:
        subscriptions.subscribe(s, uid, "pro", card=VISA)
    with read_session(engine) as s:
        invoice = s.exec(select(Invoice).where(Invoice.account_id == uid)).one()
    return uid, invoice.id


def _snapshot(engine):
    with read_session(engine) as s:
        return (
            [(e.account_id, e.amount) for e in s.exec(select(LedgerEntry))],
            [(r.invoice_id, r.amount_cents, r.status) for r in s.exec(select(InvoiceRefund))],
            [(i.id, i.status) for i in s.exec(select(Invoice))],
            [(a.id, a.role) for a in s.exec(select(Account))],
        )


def _audit(engine):
    with read_session(engine) as s:
        return [
            (a.actor_role, a.action, a.result)
            for a in s.exec(select(StaffAudit).order_by(StaffAudit.id))
        ]


@pytest.fixture
def engine(app_db):
    return app_db


def test_support_sees_no_refund_control_and_the_server_refuses_forged_refund_events(engine):
    _, token = make_user(engine, "help@staff.test", Role.SUPPORT)
    ann, invoice_id = _paid_user(engine)
    before = _snapshot(engine)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await tab.open_staff()
        st = await tab.state()
        assert st.allowed and st.my_role == "Support"
        assert (st.can_adjust, st.can_refund, st.can_manage_roles) == (True, False, False)
        await pick(tab, "ann@example.com")
        st = await tab.state()
        assert st.acc_invoices and st.acc_invoices[0]["refundable"] == "yes"
        # The browser sends the refund events anyway.
        sent = await tab.send(StaffState, "open_refund", invoice_id=str(invoice_id))
        assert "finance and admin" in sent
        st = await tab.state()
        assert not st.refund_open
        await tab.send(
            StaffState, "review_refund", form_data={"amount": "30", "reason": "Forged refund"}
        )
        await tab.send(StaffState, "confirm_refund")
        await tab.send(
            StaffState, "change_role", form_data={"role": "admin", "reason": "Promote myself"}
        )
        st = await tab.state()
        assert "Only admins" in st.role_error
        # Over the support limit (setting: 1,000 by default).
        await tab.send(StaffState, "open_adjustment")
        await review(tab, "1001", "Too generous goodwill")
        st = await tab.state()
        assert "at most 1,000" in st.adjust_error and not st.confirm_open

    run(scenario)
    assert _snapshot(engine) == before
    assert _audit(engine) == [
        ("support", "refund_invoice", "refused"),
        ("support", "set_role", "refused"),
        ("support", "adjust_balance", "refused"),
    ]


def test_finance_cannot_adjust_but_refunds_once_through_the_event_path(engine):
    _, token = make_user(engine, "money@staff.test", Role.FINANCE)
    ann, invoice_id = _paid_user(engine)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await tab.open_staff()
        st = await tab.state()
        assert (st.can_adjust, st.can_refund, st.can_manage_roles) == (False, True, False)
        await pick(tab, "ann@example.com")
        sent = await tab.send(StaffState, "open_adjustment")
        assert "cannot adjust" in sent
        st = await tab.state()
        assert not st.adjust_open

        # Another account's / unknown invoice ids are refused.
        for forged in ("999999", "-1", "1.5", "abc"):
            await tab.send(StaffState, "open_refund", invoice_id=forged)
            assert not (await tab.state()).refund_open
        await tab.send(StaffState, "open_refund", invoice_id=str(invoice_id))
        st = await tab.state()
        assert st.refund_open
        for amount in ("-5", "0", "1.234", "30.01"):
            await tab.send(
                StaffState,
                "review_refund",
                form_data={"amount": amount, "reason": "Goodwill refund"},
            )
            st = await tab.state()
            assert st.refund_error and not st.refund_confirm_open, amount
        await tab.send(
            StaffState, "review_refund", form_data={"amount": "10.00", "reason": "Goodwill refund"}
        )
        st = await tab.state()
        assert st.refund_confirm_open and "Refund $10.00 of invoice" in st.refund_confirm_text
        pending = dict(st._refund_pending)
        sent = await tab.send(StaffState, "confirm_refund")
        assert "Refunded $10.00" in sent
        st = await tab.state()
        assert st.acc_invoices[0]["status_label"] == "Partly refunded"
        assert st.acc_audit and st.acc_audit[0]["action"] == "Invoice refund"
        # The same confirmation again (a replayed event with the same pending request).
        st._refund_pending = pending
        sent = await tab.send(StaffState, "confirm_refund")
        assert "already" in sent

    run(scenario)
    with read_session(engine) as s:
        refunds = list(s.exec(select(InvoiceRefund)))
        assert [(r.amount_cents, r.status) for r in refunds] == [(1000, "succeeded")]
    assert ("finance", "adjust_balance", "refused") in _audit(engine)
    assert ("finance", "refund_invoice", "done") in _audit(engine)


def test_an_admin_changes_roles_with_a_reason_and_the_legacy_staff_role_counts_as_admin(engine):
    _, token = make_user(engine, "boss@staff.test", Role.STAFF)  # before migration 0007's rename
    bob, _ = make_user(engine, "bob@example.com")

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await tab.open_staff()
        st = await tab.state()
        assert st.my_role == "Admin" and st.can_manage_roles and st.can_refund and st.can_adjust
        await pick(tab, "bob@example.com")
        await tab.send(
            StaffState, "change_role", form_data={"role": "root", "reason": "Make him root"}
        )
        assert "Choose one of the roles" in (await tab.state()).role_error
        await tab.send(
            StaffState, "change_role", form_data={"role": "support", "reason": "Joined support"}
        )
        st = await tab.state()
        assert st.acc_role == "support" and st.role_error == ""
        await pick(tab, "boss@staff.test")
        await tab.send(StaffState, "change_role", form_data={"role": "user", "reason": "Step down"})
        assert "your own role" in (await tab.state()).role_error

    run(scenario)
    with read_session(engine) as s:
        assert s.get(Account, bob).role == "support"
        [row] = s.exec(
            select(StaffAudit).where(StaffAudit.action == "set_role", StaffAudit.result == "done")
        ).all()
        assert (
            row.reason == "Joined support"
            and row.account_id == bob
            and "user \u2192 support" in row.detail
        )


def test_the_audit_trail_is_append_only(engine):
    _, token = make_user(engine, "boss@staff.test", Role.ADMIN)
    bob, _ = make_user(engine, "bob@example.com")
    with write_session(engine) as s:
        from workroom_app.billing import staff

        actor = s.exec(select(Account).where(Account.email == "boss@staff.test")).one()
        staff.set_role(s, actor.id, bob, "finance", reason="Joined finance")
    with pytest.raises(Exception, match="append-only"), write_session(engine) as s:
        row = s.exec(select(StaffAudit)).one()
        row.result = "refused"
        s.add(row)
    with pytest.raises(Exception, match="append-only"), write_session(engine) as s:
        s.delete(s.exec(select(StaffAudit)).one())


def test_reconciliation_from_the_page_is_for_finance_and_admin_only(engine):
    _, support = make_user(engine, "help@staff.test", Role.SUPPORT)
    _, finance = make_user(engine, "money@staff.test", Role.FINANCE)
    _paid_user(engine)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(support)
        await tab.open_staff()
        assert not (await tab.state()).can_reconcile
        sent = await tab.send(StaffState, "run_reconciliation", form_data={"since": ""})
        assert "finance and admin" in sent and (await tab.state()).recon_summary == ""
        tab2 = new_tab()
        await tab2.sign_in(finance)
        await tab2.open_staff()
        await tab2.send(StaffState, "run_reconciliation", form_data={"since": "2026-01-01"})
        st = await tab2.state()
        assert st.recon_summary.startswith("1 payments checked, 1 matched, 0 problems")

    run(scenario)
    assert ("support", "reconcile", "refused") in _audit(engine)
    assert ("finance", "reconcile", "done") in _audit(engine)


def test_sign_out_everywhere_from_the_account_page(engine):
    from workroom_app.billing import accounts

    _, support = make_user(engine, "help@staff.test", Role.SUPPORT)
    _, finance = make_user(engine, "money@staff.test", Role.FINANCE)
    ann, ann_token = make_user(engine, "ann@example.com")

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(finance)
        await tab.open_staff()
        await pick(tab, "ann@example.com")
        st = await tab.state()
        assert not st.can_revoke and [x["state"] for x in st.acc_sessions] == ["live"]
        sent = await tab.send(
            StaffState, "sign_out_everywhere", form_data={"reason": "Stolen phone"}
        )
        assert "support and admin" in sent
        tab2 = new_tab()
        await tab2.sign_in(support)
        await tab2.open_staff()
        await pick(tab2, "ann@example.com")
        await tab2.send(StaffState, "sign_out_everywhere", form_data={"reason": ""})
        assert (await tab2.state()).sessions_error
        sent = await tab2.send(
            StaffState, "sign_out_everywhere", form_data={"reason": "Stolen phone"}
        )
        assert "out of 1 session" in sent
        st = await tab2.state()
        assert [x["state"] for x in st.acc_sessions] == ["revoked"]

    run(scenario)
    with read_session(engine) as s:
        assert accounts.lookup_session(s, ann_token) is None
    assert ("finance", "revoke_sessions", "refused") in _audit(engine)
    assert ("support", "revoke_sessions", "done") in _audit(engine)


def test_a_link_from_the_overview_opens_the_account(engine):
    _, token = make_user(engine, "help@staff.test", Role.SUPPORT)
    make_user(engine, "ann@example.com")

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        tab.path = "/staff/accounts?q=ann%40example.com"
        await tab.send(StaffState, "load")
        st = await tab.state()
        assert [r["email"] for r in st.results] == ["ann@example.com"]
        assert st.selected and st.acc_email == "ann@example.com"

    run(scenario)


def test_a_dispute_shows_on_the_account_page(engine):
    from datetime import UTC, datetime

    from workroom_app.models import PaymentDispute

    _, token = make_user(engine, "help@staff.test", Role.SUPPORT)
    ann, invoice_id = _paid_user(engine)
    with write_session(engine) as s:
        now = datetime(2026, 11, 24, tzinfo=UTC)
        s.add(
            PaymentDispute(
                id="dp_1",
                account_id=ann,
                invoice_id=invoice_id,
                charge_id="ch_1",
                amount_cents=3000,
                reason="fraudulent",
                status="needs_response",
                created_at=now,
                updated_at=now,
            )
        )

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await tab.open_staff()
        await pick(tab, "ann@example.com")
        st = await tab.state()
        assert [(d["amount"], d["reason"], d["status"]) for d in st.acc_disputes] == [
            ("$30.00", "fraudulent", "needs response")
        ]

    run(scenario)
