"""The staff dashboard state, driven through Reflex's real event processing
path (events queued on a BaseStateEventProcessor as the websocket handler
does; what handlers send back to the browser is recorded). A browser can call
any handler with anything: a non-staff caller and forged arguments must be
refused and change nothing."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.support.pages import NOW, StaffTab, make_user, pick, review, runner
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, LedgerEntry, Role
from workroom_app.state.session import SessionState
from workroom_app.state.staff import NOT_IN_RESULTS, NOT_STAFF, StaffState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(StaffTab, now=NOW)


def snapshot(engine) -> tuple:
    """Every balance and ledger row there is."""
    with read_session(engine) as s:
        rows = [
            (e.account_id, e.action_type, e.amount, e.reason) for e in s.exec(select(LedgerEntry))
        ]
        balances = {a.id: ledger.balance(s, a.id) for a in s.exec(select(Account))}
        return rows, balances


# ------------------------------------------------------------------ the flow


@pytest.mark.parametrize("which", ["sqlite", "postgres"])
def test_staff_finds_an_account_and_adds_credits_once(request, which):
    engine = request.getfixturevalue("app_db" if which == "sqlite" else "pg_app_db")
    _, staff_token = make_user(engine, "boss@example.com", Role.STAFF)
    ann, _ = make_user(engine, "ann@example.com")
    make_user(engine, "bob@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        sent = await tab.open_staff()
        assert "redirect" not in sent
        st = await tab.state()
        assert st.allowed
        assert [r["email"] for r in st.results] == [
            "boss@example.com",
            "ann@example.com",
            "bob@example.com",
        ]

        await tab.send(StaffState, "search", form_data={"query": "ANN"})
        st = await tab.state()
        assert [r["email"] for r in st.results] == ["ann@example.com"]
        await tab.send(StaffState, "select_account", account_id=str(ann))
        st = await tab.state()
        assert st.selected and st.acc_email == "ann@example.com" and st.acc_balance == "50"
        assert st.acc_plan == "Free" and st.acc_subscription == "Never subscribed"
        assert [r["action"] for r in st.ledger_rows] == ["Trial grant"]

        await tab.send(StaffState, "open_adjustment")
        st = await tab.state()
        assert st.adjust_open and st._request_id
        await review(tab, "25", "  Goodwill for ticket 42 ")
        st = await tab.state()
        assert st.confirm_open and st.adjust_error == ""
        assert st.confirm_text == "Add 25 credits to ann@example.com: balance 50 \u2192 75"
        assert st.confirm_reason == "Goodwill for ticket 42"
        pending = dict(st._pending)

        sent = await tab.send(StaffState, "confirm_adjustment")
        assert "Added 25 credits to ann@example.com. New balance: 75." in sent
        st = await tab.state()
        assert st.acc_balance == "75" and not st.confirm_open and not st.adjust_open
        assert [r["balance"] for r in st.results] == ["75"]
        top = st.ledger_rows[0]
        assert top["action"] == "Staff adjustment" and top["amount"] == "+25"
        assert top["note"] == "Goodwill for ticket 42 · by boss@example.com"

        # A replayed confirmation: nothing pending any more, so nothing happens.
        await tab.send(StaffState, "confirm_adjustment")
        # Even the same pending request put back (a double delivery) applies once.
        st = await tab.state()
        st._pending = pending
        sent = await tab.send(StaffState, "confirm_adjustment")
        assert "already applied" in sent
        assert (await tab.state()).acc_balance == "75"

    run(scenario)
    with read_session(engine) as s:
        assert ledger.balance(s, ann) == 75
        staff_rows = s.exec(
            select(LedgerEntry).where(LedgerEntry.action_type == "staff_adjustment")
        ).all()
        assert [(r.amount, r.reason) for r in staff_rows] == [(25, "Goodwill for ticket 42")]


def test_removing_credits_and_the_overdraw_message(app_db):
    _, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)
    ann, _ = make_user(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        await tab.open_staff()
        await pick(tab, "ann@example.com")
        await tab.send(StaffState, "open_adjustment")
        request_id = (await tab.state())._request_id
        await review(tab, "-51")
        st = await tab.state()
        assert not st.confirm_open
        assert st.adjust_error == (
            "Cannot remove 51 credits: the balance is only 50, and a balance never goes below zero."
        )
        # Same form, corrected amount: the request id has not been used up.
        await review(tab, "-20", "Duplicate trial removed")
        st = await tab.state()
        assert st._request_id == request_id
        assert st.confirm_text == "Remove 20 credits from ann@example.com: balance 50 \u2192 30"
        sent = await tab.send(StaffState, "confirm_adjustment")
        assert "Removed 20 credits from ann@example.com. New balance: 30." in sent

    run(scenario)
    with read_session(app_db) as s:
        assert ledger.balance(s, ann) == 30


def test_an_overdraw_between_review_and_confirm_is_refused_with_the_message(app_db):
    _, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)
    ann, _ = make_user(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        await tab.open_staff()
        await pick(tab, "ann@example.com")
        await tab.send(StaffState, "open_adjustment")
        await review(tab, "-40")
        # The user spends credits in the meantime.
        with write_session(app_db) as s:
            ledger.debit(s, ann, 30, feature="image", idempotency_key="spend-1")
        sent = await tab.send(StaffState, "confirm_adjustment")
        assert "Cannot remove 40 credits: the balance is only 20" in sent
        st = await tab.state()
        assert st.adjust_open and not st.confirm_open and "only 20" in st.adjust_error
        assert st.acc_balance == "20"

    run(scenario)
    with read_session(app_db) as s:
        assert ledger.balance(s, ann) == 20


# ------------------------------------------------------------- not staff


def test_a_non_staff_visitor_is_sent_home_and_forged_staff_calls_change_nothing(app_db):
    _, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)
    mallory, token = make_user(app_db, "mallory@example.com")
    victim, _ = make_user(app_db, "victim@example.com")
    before = snapshot(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        sent = await tab.open_staff()
        assert NOT_STAFF in sent and "/generate" in sent
        assert not (await tab.state()).allowed

        form = {"amount": "1000000", "reason": "I deserve it, honestly", "account_id": mallory}
        calls = [
            ("search", {"form_data": {"query": ""}}),
            ("more_results", {}),
            ("select_account", {"account_id": str(mallory)}),
            ("select_account", {"account_id": victim}),
            ("older_rows", {}),
            ("open_adjustment", {}),
            ("review_adjustment", {"form_data": form}),
            ("confirm_adjustment", {}),
            ("set_confirm_open", {"value": True}),
        ]
        for handler, payload in calls:
            sent = await tab.send(StaffState, handler, **payload)
            st = await tab.state()
            assert not st.allowed and st.results == [] and not st.selected, handler
            assert st._result_ids == [] and st._pending is None and st._request_id is None, handler
        # Planting server-side values is not possible either: no setters exist,
        # and even a planted pending adjustment is refused on the server.
        for name, value in [
            ("allowed", True),
            ("_result_ids", [mallory]),
            ("_selected_id", mallory),
            ("is_staff", True),
        ]:
            # Reflex refuses it: no setter of that name exists.
            await tab.send(StaffState, "setvar", var_name=name, value=value, refused=AttributeError)
        for handler in ("set_allowed", "set_is_staff", "_show_details", "_forget"):
            await tab.send(StaffState, handler, value=True)
        st = await tab.state()
        st._selected_id = mallory
        st._pending = {
            "account_id": mallory,
            "amount": 1000,
            "reason": "planted reason",
            "request_id": "planted-request-1",
        }
        sent = await tab.send(StaffState, "confirm_adjustment")
        assert NOT_STAFF in sent
        session = await tab.state(SessionState)
        assert session.is_staff is False and session.balance == 50

    run(scenario)
    assert snapshot(app_db) == before


def test_a_signed_out_visitor_is_sent_to_login(app_db):
    make_user(app_db, "boss@example.com", Role.STAFF)

    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/staff"
        sent = await tab.send(SessionState, "guard")
        assert "/login" in sent
        sent = await tab.send(StaffState, "search", form_data={"query": ""})
        assert "/login" in sent
        assert (await tab.state()).results == []

    run(scenario)


def test_a_staff_member_demoted_mid_session_is_refused(app_db):
    boss, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)
    ann, _ = make_user(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        await tab.open_staff()
        await pick(tab, "ann@example.com")
        await tab.send(StaffState, "open_adjustment")
        await review(tab, "500")
        assert (await tab.state()).confirm_open
        with write_session(app_db) as s:
            accounts.set_role(s, boss, Role.USER)
        sent = await tab.send(StaffState, "confirm_adjustment")
        assert NOT_STAFF in sent and "/generate" in sent
        st = await tab.state()
        assert not st.allowed and not st.selected and st._pending is None
        assert (await tab.state(SessionState)).is_staff is False

    run(scenario)
    with read_session(app_db) as s:
        assert ledger.balance(s, ann) == 50


def test_a_logged_out_staff_session_stops_working(app_db):
    _, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)
    make_user(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        await tab.open_staff()
        with write_session(app_db) as s:  # logged out in another tab
            accounts.revoke_login(s, staff_token)
        sent = await tab.send(StaffState, "search", form_data={"query": "ann"})
        assert "redirect" in sent
        assert (await tab.state()).results == []

    run(scenario)


# ------------------------------------------------------- forged arguments


def test_forged_account_ids_are_refused(app_db):
    _, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)
    ann, _ = make_user(app_db, "ann@example.com")
    bob, _ = make_user(app_db, "bob@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        await tab.open_staff()
        await tab.send(StaffState, "search", form_data={"query": "ann"})
        # bob exists but was not in the results this tab was sent.
        for forged in [
            str(bob),
            bob,
            "abc",
            "-1",
            "0",
            True,
            None,
            10**30,
            "9" * 40,
            {"id": ann},
            [ann],
            1.5,
            f"{ann} OR 1=1",
            "\u0663",
        ]:
            sent = await tab.send(StaffState, "select_account", account_id=forged)
            st = await tab.state()
            assert not st.selected, forged
            assert "toast" in sent or sent == "", forged
        sent = await tab.send(StaffState, "select_account", account_id=str(bob))
        assert NOT_IN_RESULTS in sent
        # No argument at all: Reflex refuses the call.
        await tab.send(StaffState, "select_account", refused=TypeError)
        assert not (await tab.state()).selected
        # The real one works, given as a string (what the page sends) or an int.
        await tab.send(StaffState, "select_account", account_id=ann)
        assert (await tab.state()).acc_email == "ann@example.com"

    run(scenario)


def test_forged_adjustment_forms_are_refused_and_change_nothing(app_db):
    _, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)
    ann, _ = make_user(app_db, "ann@example.com")
    bob, _ = make_user(app_db, "bob@example.com")
    before = snapshot(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        await tab.open_staff()
        # Reviewing before the form was opened.
        sent = await review(tab, "10")
        assert "Open the adjustment form first" in sent
        await pick(tab, "ann@example.com")
        await tab.send(StaffState, "open_adjustment")
        bad_forms = [
            ({"amount": "abc", "reason": "valid reason"}, "whole number"),
            ({"amount": "1000001", "reason": "valid reason"}, "at most 1,000,000"),
            ({"amount": "9" * 400, "reason": "valid reason"}, "whole number"),
            ({"amount": "0", "reason": "valid reason"}, "at least one credit"),
            ({"amount": "2.5", "reason": "valid reason"}, "whole number"),
            ({"amount": 10, "reason": "valid reason"}, "could not be read"),
            ({"amount": True, "reason": "valid reason"}, "could not be read"),
            ({"amount": "-51", "reason": "valid reason"}, "never goes below zero"),
            ({"amount": "10", "reason": ""}, "Write the reason"),
            ({"amount": "10", "reason": "   "}, "Write the reason"),
            ({"amount": "10", "reason": "ok"}, "at least 5"),
            ({"amount": "10", "reason": "r" * 501}, "at most 500"),
            ({"amount": "10", "reason": "r" * 5000}, "could not be read"),
            ({"amount": "10", "reason": ["a", "b"]}, "could not be read"),
            ({"amount": "10"}, "Write the reason"),
        ]
        for form, message in bad_forms:
            await tab.send(StaffState, "review_adjustment", form_data=form)
            st = await tab.state()
            assert message in st.adjust_error, (form, st.adjust_error)
            assert not st.confirm_open and st._pending is None
        for junk in ("amount=10", 10, ["10", "reason"], None):
            await tab.send(StaffState, "review_adjustment", form_data=junk)
            st = await tab.state()
            assert "could not be read" in st.adjust_error and not st.confirm_open
        # Extra fields cannot redirect the adjustment to another account.
        await tab.send(
            StaffState,
            "review_adjustment",
            form_data={
                "amount": "5",
                "reason": "valid reason",
                "account_id": bob,
                "request_id": "forged-request",
                "actor_id": 1,
            },
        )
        st = await tab.state()
        assert st._pending["account_id"] == ann and st._pending["request_id"] == st._request_id
        # Closing the dialog drops the pending adjustment; confirm then does nothing.
        await tab.send(StaffState, "set_confirm_open", value=False)
        await tab.send(StaffState, "confirm_adjustment")
        assert (await tab.state())._pending is None

    run(scenario)
    assert snapshot(app_db) == before


def test_staff_cannot_adjust_their_own_balance_from_the_page(app_db):
    boss, staff_token = make_user(app_db, "boss@example.com", Role.STAFF)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(staff_token)
        await tab.open_staff()
        await pick(tab, "boss@example.com")
        await tab.send(StaffState, "open_adjustment")
        await review(tab, "1000")
        st = await tab.state()
        assert "your own balance" in st.adjust_error and not st.confirm_open

    run(scenario)
    with read_session(app_db) as s:
        assert ledger.balance(s, boss) == 50


def test_the_state_refuses_non_staff_even_if_the_billing_check_were_missing(app_db, monkeypatch):
    """Defence in depth: each layer refuses on its own."""
    from workroom_app.billing import staff as staff_billing

    monkeypatch.setattr(
        staff_billing, "require_staff", lambda session, actor_id: session.get(Account, actor_id)
    )
    mallory, token = make_user(app_db, "mallory@example.com")
    before = snapshot(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        assert NOT_STAFF in await tab.open_staff()
        assert NOT_STAFF in await tab.send(StaffState, "search", form_data={"query": ""})
        st = await tab.state()
        assert st.results == [] and st._result_ids == []
        st._result_ids = [mallory]
        st._selected_id = mallory
        assert NOT_STAFF in await tab.send(StaffState, "select_account", account_id=str(mallory))
        assert NOT_STAFF in await tab.send(StaffState, "open_adjustment")
        st = await tab.state()
        st._selected_id = mallory
        st._request_id = "planted-request-1"
        st.adjust_open = True
        await review(tab, "1000", "planted reason")
        st = await tab.state()
        st._pending = {
            "account_id": mallory,
            "amount": 1000,
            "reason": "planted reason",
            "request_id": "planted-request-1",
        }
        st._selected_id = mallory
        assert NOT_STAFF in await tab.send(StaffState, "confirm_adjustment")
        st = await tab.state()
        assert not st.allowed and not st.selected and st._pending is None

    run(scenario)
    assert snapshot(app_db) == before
