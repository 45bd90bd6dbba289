"""Sessions: every event of a signed-in tab re-checks its login (state/session_guard.py).

Driven through Reflex's real event path with the app's middleware (tests/support/reflex_events.py): each
tab sends the Cookie header its websocket connection would carry.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.support.pages import (
    BOTH_ENGINES,
    NOW,
    PlansTab,
    invoices_of,
    make_user,
    runner,
    subscribe,
    video_form,
)
from tests.support.reflex_events import api_client
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import AuthSession, GenerationJob, PaymentMethod, Role
from workroom_app.state.generate import GenerateState
from workroom_app.state.plans import PlansState
from workroom_app.state.session import SessionState
from workroom_app.state.staff import StaffState
from workroom_app.state.subscription import SubscriptionState
from workroom_app.state.usage import UsageState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(PlansTab, now=NOW)


def _cards(engine, account_id: int) -> int:
    with read_session(engine) as s:
        return len(
            s.exec(select(PaymentMethod).where(PaymentMethod.account_id == account_id)).all()
        )


def _jobs(engine, account_id: int) -> int:
    with read_session(engine) as s:
        return len(
            s.exec(select(GenerationJob).where(GenerationJob.account_id == account_id)).all()
        )


@BOTH_ENGINES
def test_the_thief_with_a_copied_cookie_is_refused_everywhere_once_the_victim_logs_out(app_db):
    """Finding 1: a second client with the victim's cookie kept using the account after logout."""
    victim_id, token = make_user(app_db, "victim@example.com")
    subscribe(app_db, victim_id, "starter")  # a saved card an upgrade could charge

    async def scenario(new_browser):
        victim, thief = new_browser(), new_browser()
        await victim.sign_in(token)
        await thief.sign_in(token)  # the stolen cookie: works while the session lives
        await thief.open("/plans", PlansState)
        assert (await thief.state(SessionState))._account_id == victim_id
        await thief.send(PlansState, "open_action", plan_key="pro")  # preview ready to confirm
        thief.path = "/subscription"
        await thief.send(SubscriptionState, "load")
        assert (await thief.state(SubscriptionState)).card_label  # the account is visible...

        await victim.send(SessionState, "logout")
        balance_before = ledger_balance(app_db, victim_id)
        cards_before, jobs_before = _cards(app_db, victim_id), _jobs(app_db, victim_id)

        # ...and after the logout every event of the thief's open connection is refused.
        sent = await thief.send(PlansState, "confirm")
        assert "/login" in sent
        assert (await thief.state(SessionState))._account_id is None
        assert not (
            await thief.state(PlansState)
        )._pending  # nothing of the account stays in the tab
        await thief.sign_in(token)  # and the copied cookie no longer signs anything in
        assert (await thief.state(SessionState))._account_id is None
        thief.path = "/generate"
        await thief.send(GenerateState, "submit", form_data=video_form())
        thief.path = "/usage"
        await thief.send(UsageState, "load")
        assert (await thief.state(UsageState)).rows == []
        thief.path = "/subscription"
        await thief.send(
            SubscriptionState,
            "submit_card",
            form_data={
                "number": "5555 5555 5555 4444",
                "expiry": "07/31",
                "cvc": "321",
                "name": "T",
            },
        )
        thief.path = "/plans"
        await thief.send(PlansState, "open_action", plan_key="studio")
        await thief.send(PlansState, "confirm")

        assert ledger_balance(app_db, victim_id) == balance_before
        assert (_cards(app_db, victim_id), _jobs(app_db, victim_id)) == (cards_before, jobs_before)

    run(scenario)
    assert [i for i in invoices_of(app_db, victim_id) if i.kind == "upgrade"] == []


def test_each_refused_event_runs_no_handler_even_with_the_tab_state_still_bound(app_db):
    """The tab stays bound (its state still holds the account) when the session is revoked
    elsewhere; the very next event of each kind is refused before its handler runs."""
    victim_id, token = make_user(app_db, "victim@example.com")
    subscribe(app_db, victim_id, "starter")

    for handler_state, handler, payload, path in [
        (GenerateState, "submit", {"form_data": video_form()}, "/generate"),
        (UsageState, "load", {}, "/usage"),
        (
            SubscriptionState,
            "submit_card",
            {
                "form_data": {
                    "number": "5555 5555 5555 4444",
                    "expiry": "07/31",
                    "cvc": "321",
                    "name": "T",
                }
            },
            "/subscription",
        ),
        (PlansState, "confirm", {}, "/plans"),
    ]:
        with write_session(app_db) as s:
            fresh = accounts.create_login(s, victim_id)

        async def scenario(
            new_browser,
            fresh=fresh,
            handler_state=handler_state,
            handler=handler,
            payload=payload,
            path=path,
        ):
            thief = new_browser()
            await thief.sign_in(fresh)
            await thief.open("/plans", PlansState)
            await thief.send(PlansState, "open_action", plan_key="pro")
            thief.path = path
            with write_session(app_db) as s:  # the owner logs out on another device
                assert accounts.revoke_login(s, fresh)
            jobs, cards = _jobs(app_db, victim_id), _cards(app_db, victim_id)
            invoices = len(invoices_of(app_db, victim_id))
            sent = await thief.send(handler_state, handler, **payload)
            assert "/login" in sent, handler
            assert (await thief.state(SessionState))._account_id is None
            assert (_jobs(app_db, victim_id), _cards(app_db, victim_id)) == (jobs, cards), handler
            assert len(invoices_of(app_db, victim_id)) == invoices, handler

        run(scenario)


def ledger_balance(engine, account_id: int) -> int:
    with read_session(engine) as s:
        return ledger.balance(s, account_id)


def test_a_closed_tabs_client_token_without_the_cookie_reads_nothing(app_db):
    """Finding 3: Reflex's client token is a tab id; alone it must not reconnect as the account."""
    account_id, token = make_user(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        tab.path = "/usage"
        await tab.send(UsageState, "load")
        assert (await tab.state(UsageState)).rows  # the trial grant row
        # The tab closes; someone connects with its client token but without the cookie.
        tab.cookie = ""
        sent = await tab.send(UsageState, "load")
        assert "/login" in sent
        assert (await tab.state(UsageState)).rows == []
        assert (await tab.state(SessionState))._account_id is None
        # Nor with another account's cookie: the tab is not silently switched.
        _, other = make_user(app_db, "bob@example.com")
        await tab.sign_in(token)
        tab.cookie = other
        assert "/login" in await tab.send(UsageState, "load")

    run(scenario)


def test_an_expired_session_or_a_disabled_account_is_refused_on_the_next_event(app_db):
    account_id, token = make_user(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        tab.path = "/usage"
        await tab.send(UsageState, "load")
        with write_session(app_db) as s:
            accounts.set_disabled(s, account_id, True)
        assert "/login" in await tab.send(UsageState, "load")
        with write_session(app_db) as s:
            accounts.set_disabled(s, account_id, False)
            fresh = accounts.create_login(s, account_id, days=1)
        await tab.sign_in(fresh)
        assert (await tab.state(SessionState))._account_id == account_id
        with write_session(app_db) as s:  # its lifetime runs out while the tab is open
            row = s.exec(
                select(AuthSession).where(AuthSession.token_hash == accounts.token_hash(fresh))
            ).one()
            row.expires_at = NOW
            s.add(row)
        assert "/login" in await tab.send(UsageState, "load")

    run(scenario)


def test_log_out_everywhere_ends_every_session_of_the_account_only(app_db):
    ann, token = make_user(app_db, "ann@example.com")
    _, bob_token = make_user(app_db, "bob@example.com")
    with write_session(app_db) as s:
        phone = accounts.create_login(s, ann)

    async def scenario(new_browser):
        laptop, phone_tab, bob = new_browser(), new_browser(), new_browser()
        await laptop.sign_in(token)
        await phone_tab.sign_in(phone)
        await bob.sign_in(bob_token)
        sent = await laptop.send(SessionState, "logout_everywhere")
        assert "/api/auth/logout" in sent  # the server clears this browser's cookie
        phone_tab.path = "/usage"
        assert "/login" in await phone_tab.send(UsageState, "load")
        bob.path = "/usage"
        await bob.send(UsageState, "load")
        assert (await bob.state(SessionState))._account_id is not None

    run(scenario)
    with read_session(app_db) as s:
        assert (
            accounts.lookup_session(s, token) is None and accounts.lookup_session(s, phone) is None
        )
        assert accounts.lookup_session(s, bob_token) is not None


def test_staff_can_log_an_account_out_everywhere_and_users_cannot(app_db):
    ann, ann_token = make_user(app_db, "ann@example.com")
    mallory, mallory_token = make_user(app_db, "mallory@example.com")
    boss, boss_token = make_user(app_db, "boss@example.com")
    with write_session(app_db) as s:
        accounts.set_role(s, boss, Role.STAFF)

    async def scenario(new_browser):
        # A user calling the staff handler (any browser can send any event): refused.
        attacker = new_browser()
        await attacker.sign_in(mallory_token)
        attacker.path = "/staff"
        # The handler's own check (the event as the staff page sends it), and an id typed in,
        # which Reflex refuses before any handler runs.
        await attacker.send(StaffState, "sign_out_everywhere", form_data={"reason": "x"})
        await attacker.send(
            StaffState,
            "sign_out_everywhere",
            form_data={"reason": "x"},
            account_id=str(ann),
            refused=TypeError,
        )
        with read_session(app_db) as s:
            assert accounts.lookup_session(s, ann_token) is not None
        staff = new_browser()
        await staff.sign_in(boss_token)
        staff.path = "/staff"
        await staff.send(StaffState, "load")
        # Staff may only act on the account they opened, not on an id they type in.
        await staff.send(
            StaffState,
            "sign_out_everywhere",
            form_data={"reason": "Stolen"},
            account_id=str(ann),
            refused=TypeError,  # no such argument: Reflex refuses the event, nothing runs
        )
        with read_session(app_db) as s:
            assert accounts.lookup_session(s, ann_token) is not None
        await staff.send(StaffState, "search", form_data={"query": "ann@"})
        await staff.send(StaffState, "select_account", account_id=str(ann))
        sent = await staff.send(
            StaffState, "sign_out_everywhere", form_data={"reason": "Stolen laptop"}
        )
        assert "signed ann@example.com out of" in sent.lower()

    run(scenario)
    with read_session(app_db) as s:
        assert accounts.lookup_session(s, ann_token) is None
        assert accounts.lookup_session(s, mallory_token) is not None
        assert accounts.lookup_session(s, boss_token) is not None


def test_logout_route_clears_the_cookie_and_refuses_other_sites(app_db):
    account_id, token = make_user(app_db, "ann@example.com")
    client = api_client()
    cross = client.post(
        "/api/auth/logout",
        cookies={"workroom_session": token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    with read_session(app_db) as s:
        assert accounts.lookup_session(s, token) is not None
    out = client.post(
        "/api/auth/logout", cookies={"workroom_session": token}, follow_redirects=False
    )
    assert out.status_code == 303 and out.headers["location"] == "/login"
    set_cookie = out.headers["set-cookie"].lower()
    assert (
        "workroom_session=" in set_cookie and "max-age=0" in set_cookie and "httponly" in set_cookie
    )
    with read_session(app_db) as s:
        assert accounts.lookup_session(s, token) is None


def test_the_header_alerts_are_refused_once_the_session_is_revoked(app_db):
    """AlertsState (the balance popover and the past-due banner, on every page) reads the account
    too: its events pass the same session check as every other state's."""
    from workroom_app.billing import alerts
    from workroom_app.models import AlertKind
    from workroom_app.state.alerts import AlertsState

    victim_id, _token = make_user(app_db, "victim@example.com")
    with write_session(app_db) as s:
        fresh = accounts.create_login(s, victim_id)
        alerts.notify(
            s,
            victim_id,
            AlertKind.LOW_BALANCE,
            title="Your balance is low",
            body="private",
            link="/usage",
            dedupe_key="qa-low",
            send_email=False,
        )

    async def scenario(new_browser):
        thief = new_browser()
        await thief.sign_in(fresh)
        await thief.open("/plans", PlansState)
        with write_session(app_db) as s:  # the owner logs out on another device
            assert accounts.revoke_login(s, fresh)
        sent = await thief.send(AlertsState, "refresh")
        assert "/login" in sent
        assert (await thief.state(AlertsState)).alerts == []
        assert (await thief.state(SessionState))._account_id is None

    run(scenario)
