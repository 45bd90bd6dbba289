"""The live push (state/live.py) through Reflex's real event path: a change pushes to the open tabs
of that account when its transaction commits, a tab of another account receives nothing, a
change made by another process reaches the tab on SQLite, and an idle tab costs no SQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from reflex.istate.manager.token import BaseStateToken
from reflex.state import State, StateUpdate
from reflex_base import constants
from reflex_base.event import Event
from sqlalchemy import event

from tests.support.factories import login, sign_up
from tests.support.pages import video_form
from tests.support.reflex_events import EventBrowser, Recorder, frontend_text
from tests.support.reflex_events import run as run_events
from tests.support.sql_watch import LoginChecks
from workroom_app import notifications
from workroom_app.billing import accounts, ledger
from workroom_app.db import write_session
from workroom_app.generation import jobs
from workroom_app.models import JobStatus
from workroom_app.security.live_logins import live_logins
from workroom_app.settings import get_settings
from workroom_app.state import live
from workroom_app.state.generate import GenerateState
from workroom_app.state.session import SessionState

REPO = Path(__file__).resolve().parents[2]


class Browser(EventBrowser):
    path = "/generate"

    def event(self, state_cls, handler: str, payload: dict[str, Any], **kwargs: Any) -> Event:
        # The socket handler adds the tab's client token to every event's router data.
        ev = super().event(state_cls, handler, payload, **kwargs)
        ev.router_data[constants.RouteVar.CLIENT_TOKEN] = self.token
        return ev

    async def open(self, email: str) -> None:
        """Sign in (the login cookie, resolved by the guard) and load /generate as the browser does."""
        # The browser's connection carries the HttpOnly login cookie the server set.
        await self.sign_in(login(None, email))
        await self.send(GenerateState, "load")
        assert (await self.state(SessionState))._account_id is not None


class Pushes:
    """live.Pusher over the test's in-memory state manager; counts the tabs it touched."""

    def __init__(self, manager, recorder: Recorder) -> None:
        self.touched: list[str] = []
        self.events: dict[str, list[Event]] = {}

        @contextlib.asynccontextmanager
        async def modify(token: str):
            self.touched.append(token)
            async with manager.modify_state(BaseStateToken(ident=token, cls=State)) as root:
                yield root
                delta = await root._get_resolved_delta()
                root._clean()
                if delta:
                    await recorder.emit_update(StateUpdate(delta=delta), token)

        async def emit(token: str, events: list) -> None:
            fixed = Event.from_event_type(events)
            self.events.setdefault(token, []).extend(fixed)
            await recorder.emit_update(StateUpdate(events=fixed), token)

        self.pusher = live.Pusher(modify, emit, lambda token: True)


@pytest.fixture
def app_db(app_db, monkeypatch):
    """The app's SQLite database with this process's change bus, and no tab left registered."""
    monkeypatch.setenv("WORKROOM_NOTIFY", "local")
    get_settings.cache_clear()
    live.registry.clear()
    yield app_db
    live.registry.clear()
    live.set_pusher(None)


async def wait_for(check, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


def with_feed(scenario, *, guard_memory: bool = False):
    """Run `scenario(new_tab, pushes)` with this process's change listener wired to the live push
    (and, with guard_memory, to the session guard's memory of live logins, as the app runs)."""

    async def outer(new_tab):
        first = new_tab()
        pushes = Pushes(first.manager, first.recorder)
        live.set_pusher(pushes.pusher)
        async with notifications.ChangeFeed() as feed:
            feed.subscribe(live.on_change, on_resync=live.resync)
            if guard_memory:
                live_logins.listen(feed)
            try:
                await scenario(new_tab, pushes)
                await live.wait_idle()
            finally:
                live_logins.stop()

    run_events(Browser, outer)


def test_a_balance_change_reaches_every_tab_of_that_account_and_no_other(app_db):
    ann = sign_up(app_db, "ann@example.com")
    sign_up(app_db, "bob@example.com")

    async def scenario(new_tab, pushes):
        ann_1, ann_2, bob = new_tab(), new_tab(), new_tab()
        await ann_1.open("ann@example.com")
        await ann_2.open("ann@example.com")
        await bob.open("bob@example.com")
        assert len(live.registry) == 3

        # A staff adjustment made outside any tab, committed in a worker thread as the app does.
        await asyncio.to_thread(_adjust, app_db, ann, 7, "adj-1")

        async def both_show(n):
            return all([(await t.state(SessionState)).balance == n for t in (ann_1, ann_2)])

        assert await wait_for(lambda: both_show(57))
        await live.wait_idle()
        assert sorted(pushes.touched) == sorted([ann_1.token, ann_2.token])  # bob's tab: untouched
        assert (await bob.state(SessionState)).balance == 50

        # Rolled back: nobody hears of it.
        pushes.touched.clear()

        def rolled_back():
            with contextlib.suppress(RuntimeError), write_session(app_db) as s:
                ledger.staff_adjust(s, ann, 3, reason="t", actor_id=ann, idempotency_key="rb-1")
                raise RuntimeError("no")

        await asyncio.to_thread(rolled_back)
        await asyncio.sleep(0.4)
        await live.wait_idle()
        assert pushes.touched == []

    with_feed(scenario)


def _adjust(engine, account_id: int, amount: int, key: str) -> None:
    with write_session(engine) as s:
        ledger.staff_adjust(
            s, account_id, amount, reason="goodwill", actor_id=account_id, idempotency_key=key
        )


def test_jobs_are_pushed_and_a_failure_toasts_with_the_refund(app_db):
    ann = sign_up(app_db, "ann@example.com", extra_credits=50)

    async def scenario(new_tab, pushes):
        tab = new_tab()
        await tab.open("ann@example.com")

        def submit_elsewhere():  # another tab (or device) of the same user
            with write_session(app_db) as s:
                return jobs.submit(
                    s,
                    ann,
                    {
                        "feature": "video",
                        "model": "seedance_lite",
                        "resolution": "720p",
                        "duration": "5",
                        "prompt": "x",
                    },
                    client_request_id="other-1",
                ).id

        job_id = await asyncio.to_thread(submit_elsewhere)

        async def listed():
            return [j.id for j in (await tab.state(GenerateState)).active_jobs] == [job_id]

        assert await wait_for(listed)
        assert await wait_for(lambda: _balance_is(tab, 80))

        def fail():
            with write_session(app_db) as s:
                jobs.fail(s, job_id, JobStatus.FAILED, "boom")

        await asyncio.to_thread(fail)

        async def ended():
            gen = await tab.state(GenerateState)
            return gen.active_jobs == [] and gen.history and gen.history[0].status == "failed"

        assert await wait_for(ended)
        assert await wait_for(lambda: _balance_is(tab, 100))
        await live.wait_idle()
        pushed = frontend_text(tab.recorder.updates)
        assert "Generation failed" in pushed and "20 credits returned" in pushed

    with_feed(scenario)


async def _balance_is(tab, n: int) -> bool:
    return (await tab.state(SessionState)).balance == n


@pytest.mark.slow  # starts a second Python process
def test_a_change_from_another_process_reaches_the_tab_on_sqlite(app_db):
    """The CLI (or a separate `workroom worker`) changes the balance: the open tab follows."""
    ann = sign_up(app_db, "ann@example.com")
    url = app_db.url.render_as_string(hide_password=False)
    script = (
        "from workroom_app.db import get_engine, write_session\n"
        "from workroom_app.billing import ledger\n"
        f"with write_session(get_engine({url!r})) as s:\n"
        f"    ledger.staff_adjust(s, {ann}, 11, reason='cli', actor_id={ann}, idempotency_key='cli-live')\n"
    )

    async def scenario(new_tab, pushes):
        tab = new_tab()
        await tab.open("ann@example.com")
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script],
            cwd=REPO,
            check=True,
            env={**os.environ, "WORKROOM_NOTIFY": "local"},
        )
        assert await wait_for(lambda: _balance_is(tab, 61))

    with_feed(scenario)


def test_an_idle_tab_issues_no_sql_and_gets_no_push(app_db):
    sign_up(app_db, "ann@example.com")
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # noqa: ANN001
        statements.append(statement)

    async def scenario(new_tab, pushes):
        tabs = [new_tab() for _ in range(3)]
        for tab in tabs:
            await tab.open("ann@example.com")
        await asyncio.sleep(0.6)  # the listener has seen the log-ins' writes
        await live.wait_idle()
        pushes.touched.clear()
        updates_before = len(tabs[0].recorder.updates)
        event.listen(app_db, "before_cursor_execute", count)
        try:
            await asyncio.sleep(2.5)
        finally:
            event.remove(app_db, "before_cursor_execute", count)
        assert pushes.touched == []
        assert len(tabs[0].recorder.updates) == updates_before

    with_feed(scenario)
    assert statements == []


def test_a_signed_out_tab_is_dropped_and_gets_nothing(app_db):
    ann = sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, pushes):
        tab = new_tab()
        await tab.open("ann@example.com")
        await tab.send(SessionState, "logout")
        await asyncio.to_thread(_adjust, app_db, ann, 5, "after-logout")
        await asyncio.sleep(0.4)
        await live.wait_idle()
        assert (await tab.state(SessionState)).balance == 0  # nothing pushed to a signed-out tab
        assert len(live.registry) == 0

    with_feed(scenario)


def test_a_missed_notification_is_recovered_by_one_resync(app_db):
    ann = sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, pushes):
        tab = new_tab()
        await tab.open("ann@example.com")
        live.registry.unregister(tab.token)  # as if the listener was down during the change
        await asyncio.to_thread(_adjust, app_db, ann, 4, "missed")
        await asyncio.sleep(0.4)
        assert (await tab.state(SessionState)).balance == 50
        live.registry.register(tab.token, ann)
        live.resync()  # what the feed calls after reconnecting
        assert await wait_for(lambda: _balance_is(tab, 54))

    with_feed(scenario)


@pytest.mark.parametrize("guard_memory", [False, True], ids=["asking", "remembering"])
def test_a_login_ended_elsewhere_signs_its_open_tabs_out_at_once_and_no_other(app_db, guard_memory):
    # The thief's tab holds a copy of the victim's cookie and sends nothing; the victim logs
    # out (or logs out everywhere). The push signs the copied tab out without waiting for an
    # event, and never sends it the account's new figures.
    ann = sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, pushes):
        victim, thief, laptop = new_tab(), new_tab(), new_tab()
        await victim.open("ann@example.com")
        thief.cookie = victim.cookie
        await thief.send(SessionState, "guard")  # (which registers the tab for pushes)
        await laptop.open("ann@example.com")  # another login of hers, not revoked
        assert (await thief.state(SessionState))._account_id == ann

        def log_out():
            with write_session(app_db) as s:
                assert accounts.revoke_login(s, victim.cookie)

        await asyncio.to_thread(log_out)

        async def thief_out():
            return (await thief.state(SessionState))._account_id is None

        assert await wait_for(thief_out)
        await live.wait_idle()
        thief_state = await thief.state(SessionState)
        assert not thief_state.signed_in and thief_state.balance == 0 and thief_state.email == ""
        assert any(
            ev.name.endswith("redirect") or "/login" in str(ev.payload)
            for ev in pushes.events.get(thief.token, [])
        )
        # Her other login is untouched, and later changes reach only it.
        assert (await laptop.state(SessionState))._account_id == ann
        pushes.touched.clear()
        await asyncio.to_thread(_adjust, app_db, ann, 5, "after-logout")

        async def laptop_shows():
            return (await laptop.state(SessionState)).balance == 55

        assert await wait_for(laptop_shows)
        await live.wait_idle()
        assert thief.token not in pushes.touched and victim.token not in pushes.touched
        assert (await thief.state(SessionState)).balance == 0

    with_feed(scenario, guard_memory=guard_memory)


def test_log_out_sends_the_other_open_tabs_of_that_login_to_the_login_page(app_db):
    """Both tabs share the browser's cookie; one logs out. The idle other tab sends no event,
    so nothing but the push can tell it: it is signed out and sent to /login at once."""
    ann = sign_up(app_db, "ann@example.com")
    sign_up(app_db, "bob@example.com")

    async def scenario(new_tab, pushes):
        first, second, bob = new_tab(), new_tab(), new_tab()
        with write_session(app_db) as s:
            token = accounts.create_login(s, ann)
        for tab in (first, second):
            tab.cookie = token
            await tab.send(SessionState, "guard")
        await bob.open("bob@example.com")
        await asyncio.sleep(0.4)
        await live.wait_idle()
        await first.send(SessionState, "logout")

        async def sent_to_login():
            return "/login" in frontend_text(second.recorder.by_token.get(second.token, []))

        assert await wait_for(sent_to_login)
        assert (await second.state(SessionState))._account_id is None
        assert (await second.state(SessionState)).signed_in is False
        assert "/login" not in frontend_text(bob.recorder.by_token.get(bob.token, []))
        assert (await bob.state(SessionState)).signed_in is True

    with_feed(scenario)


def test_log_out_everywhere_sends_every_login_of_the_account_to_the_login_page(app_db):
    sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, pushes):
        here, other_device = new_tab(), new_tab()
        await here.open("ann@example.com")
        await other_device.open("ann@example.com")
        await asyncio.sleep(0.4)
        await live.wait_idle()
        await here.send(SessionState, "logout_everywhere")

        async def sent_to_login():
            return "/login" in frontend_text(
                other_device.recorder.by_token.get(other_device.token, [])
            )

        assert await wait_for(sent_to_login)
        assert (await other_device.state(SessionState))._account_id is None

    with_feed(scenario)


def test_a_payment_made_elsewhere_refreshes_the_open_payment_history(app_db):
    """A staff refund, an auto top-up or a renewal changes Payment History: a tab showing
    /subscription re-reads it (a tab on another page is not asked to)."""
    from tests.support.subscriptions import subscribe
    from workroom_app.state.subscription import SubscriptionState

    ann = sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, pushes):
        on_page, elsewhere = new_tab(), new_tab()
        on_page.path = "/subscription"
        await on_page.open("ann@example.com")
        await on_page.send(SubscriptionState, "load")
        await elsewhere.open("ann@example.com")
        assert (await on_page.state(SubscriptionState)).payments == []
        await asyncio.sleep(0.4)
        await live.wait_idle()

        await asyncio.to_thread(subscribe, app_db, ann, "starter")

        async def asked():
            return "refresh_payments" in frontend_text(
                on_page.recorder.by_token.get(on_page.token, [])
            )

        assert await wait_for(asked)
        await on_page.send(SubscriptionState, "refresh_payments")
        sub = await on_page.state(SubscriptionState)
        assert [p.amount for p in sub.payments] == ["$10.00"] and sub.current_plan == "Starter"
        assert "refresh_payments" not in frontend_text(
            elsewhere.recorder.by_token.get(elsewhere.token, [])
        )
        # The past-due banner and alert toasts are on every page: every tab re-reads them.
        assert await wait_for(lambda: _asked(elsewhere, "alerts_state.refresh"))

        # A staff refund of that invoice (writes only refund rows and a credit removal).
        asks = frontend_text(on_page.recorder.by_token[on_page.token]).count("refresh_payments")
        await asyncio.to_thread(_staff_refund, app_db, ann, sub.payments[0].id)

        async def asked_again():
            return (
                frontend_text(on_page.recorder.by_token[on_page.token]).count("refresh_payments")
                > asks
            )

        assert await wait_for(asked_again)
        await on_page.send(SubscriptionState, "refresh_payments")
        assert (
            (await on_page.state(SubscriptionState))
            .payments[0]
            .status_label.startswith("Partly refunded")
        )

    with_feed(scenario)


def _staff_refund(engine, account_id: int, invoice_id: int) -> None:
    from workroom_app.billing import invoice_refunds
    from workroom_app.models import Role

    with write_session(engine) as s:
        staff_id = accounts.sign_up(
            s, "finance@staff.test", "correct horse battery", role=Role.FINANCE
        ).id
    invoice_refunds.refund_invoice(
        engine,
        staff_id,
        account_id,
        invoice_id,
        "4.00",
        reason="Customer asked, duplicate charge",
        request_id="req-live-0001",
    )


async def _asked(tab, event_name: str) -> bool:
    return event_name in frontend_text(tab.recorder.by_token.get(tab.token, []))


def test_a_submission_reaches_the_accounts_other_tabs_but_is_not_pushed_back_to_its_own(app_db):
    sign_up(app_db, "ann@example.com", extra_credits=50)

    async def scenario(new_tab, pushes):
        submitter, other = new_tab(), new_tab()
        await submitter.open("ann@example.com")
        await other.open("ann@example.com")
        await submitter.send(GenerateState, "submit", form_data=video_form())
        job_ids = [j.id for j in (await submitter.state(GenerateState)).active_jobs]
        assert len(job_ids) == 1  # shown by the submission itself

        async def other_shows_it():
            return [j.id for j in (await other.state(GenerateState)).active_jobs] == job_ids

        assert await wait_for(other_shows_it)
        await live.wait_idle()
        assert pushes.touched == [other.token]

        # Alone on the account, the submitting tab costs no read and no push at all.
        await other.send(SessionState, "logout")
        await asyncio.sleep(0.3)  # the log-out's own change is pushed (its logins re-checked)
        await live.wait_idle()
        pushes.touched.clear()
        await submitter.send(GenerateState, "submit", form_data=video_form())
        await asyncio.sleep(0.3)
        await live.wait_idle()
        assert pushes.touched == []

    with_feed(scenario)


def test_a_change_the_acting_tab_does_not_show_itself_still_reaches_it():
    kinds = frozenset({notifications.JOB, notifications.BALANCE})
    own = notifications.Change(1, kinds, tab="tab-a")
    pending = live.PendingPush()
    pending.add(own, kinds)
    assert pending.skip == {"tab-a"}
    # A payment (an auto top-up in the same transaction) is not what a submission shows.
    paid = notifications.Change(1, frozenset({notifications.PAYMENT}), tab="tab-a")
    pending.add(paid, paid.kinds)
    assert pending.skip == set()
    # Merged with a change made elsewhere (the worker), the tab needs the push too.
    pending = live.PendingPush()
    pending.add(own, kinds)
    pending.add(notifications.Change(1, frozenset({notifications.JOB})), kinds)
    assert pending.skip == set()


def test_changes_close_together_go_out_as_one_push(app_db):
    ann = sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, pushes):
        tab = new_tab()
        await tab.open("ann@example.com")
        # Three steps of one account, 60 ms apart: the first goes out at once, the two that
        # follow within PUSH_SPACING_SECONDS of it are merged into one push after it.
        assert live.PUSH_SPACING_SECONDS >= 0.15
        for n in range(3):
            await asyncio.to_thread(_adjust, app_db, ann, 1, f"step-{n}")
            await asyncio.sleep(0.06)
        assert await wait_for(lambda: _balance_is(tab, 53))
        await live.wait_idle()
        # Two pushes (or one, if the first had not started before the others arrived on a busy
        # machine); without the spacing each step would be its own push.
        assert set(pushes.touched) == {tab.token} and len(pushes.touched) <= 2

    with_feed(scenario)


def test_a_push_asks_for_no_login_the_session_guard_has_just_found_live(app_db):
    ann = sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, pushes):
        tab = new_tab()
        await tab.open("ann@example.com")  # the page load's guard found her login live
        with LoginChecks(app_db) as login_reads:
            await asyncio.to_thread(_adjust, app_db, ann, 3, "remembered")
            assert await wait_for(lambda: _balance_is(tab, 53))
            await live.wait_idle()
        assert pushes.touched == [tab.token]
        assert login_reads == []
        # Once her logins change (another one ends), the push asks again, and this tab stays.
        other_login = login(None, "ann@example.com")
        with write_session(app_db) as s:
            accounts.revoke_login(s, other_login)
        with LoginChecks(app_db) as login_reads:
            await asyncio.sleep(0.3)
            await live.wait_idle()
        assert login_reads != []
        assert (await tab.state(SessionState))._account_id == ann

    with_feed(scenario, guard_memory=True)
