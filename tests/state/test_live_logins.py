"""The session guard's memory of live logins (security/live_logins.py), through Reflex's real
event path: a busy tab does not ask the database on every event, and a login that ends is still
refused on the very next event (same process: at once; another process: once its notification
is heard)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.state.test_live import REPO, Browser, wait_for
from tests.support.factories import sign_up
from tests.support.reflex_events import run as run_events
from tests.support.sql_watch import LoginChecks
from workroom_app import db, notifications, settings
from workroom_app.billing import accounts, clock
from workroom_app.db import read_session, write_session
from workroom_app.models import AuthSession
from workroom_app.security.live_logins import LiveLogins, live_logins
from workroom_app.state.generate import GenerateState
from workroom_app.state.session import SessionState


@pytest.fixture
def app_db(app_db, monkeypatch):  # noqa: ANN001
    """The app's SQLite database with this process's change bus."""
    monkeypatch.setenv("WORKROOM_NOTIFY", "local")
    settings.get_settings.cache_clear()
    yield app_db
    settings.get_settings.cache_clear()


def with_guard_listening(scenario):
    """Run `scenario(new_tab, feed)` with this process's change listener heard by the guard only
    (no live push: what is tested is the guard's own check)."""

    async def outer(new_tab):
        async with notifications.ChangeFeed() as feed:
            live_logins.listen(feed)
            try:
                await scenario(new_tab, feed)
            finally:
                live_logins.stop()

    run_events(Browser, outer)


async def signed_in(tab: Browser) -> bool:
    return (await tab.state(SessionState))._account_id is not None


def test_a_busy_tab_does_not_ask_the_database_on_every_event(app_db):
    sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, feed):
        tab = new_tab()
        await tab.open("ann@example.com")  # the page load's guard found the login live
        with LoginChecks(app_db) as seen:
            for _ in range(5):
                await tab.send(GenerateState, "dismiss_error")
        assert seen == []
        assert await signed_in(tab)

        # Without a listener that hears every change, every event asks again.
        feed.listening.clear()
        with LoginChecks(app_db) as seen:
            for _ in range(3):
                await tab.send(GenerateState, "dismiss_error")
        assert len(seen) == 3
        feed.listening.set()

    with_guard_listening(scenario)


def test_a_copied_cookie_is_refused_on_the_next_event_after_the_victim_logs_out(app_db):
    sign_up(app_db, "ann@example.com")

    async def scenario(new_tab, feed):
        victim, thief = new_tab(), new_tab()
        await victim.open("ann@example.com")
        thief.cookie = victim.cookie  # the stolen cookie, remembered as live by this process
        await thief.send(SessionState, "guard")
        await thief.send(GenerateState, "dismiss_error")
        assert await signed_in(thief)
        assert len(live_logins) == 1

        await victim.send(SessionState, "logout")
        # No waiting for any notification: the commit itself made the guard forget it.
        await thief.send(GenerateState, "dismiss_error")
        assert not await signed_in(thief)

    with_guard_listening(scenario)


def test_a_log_out_everywhere_from_another_process_is_refused_once_heard(app_db):
    ann = sign_up(app_db, "ann@example.com")
    url = app_db.url.render_as_string(hide_password=False)
    script = (
        "from workroom_app.db import get_engine, write_session\n"
        "from workroom_app.billing import accounts\n"
        f"with write_session(get_engine({url!r})) as s:\n"
        f"    accounts.revoke_all_logins(s, {ann})\n"
    )

    async def scenario(new_tab, feed):
        tab = new_tab()
        await tab.open("ann@example.com")
        await tab.send(GenerateState, "dismiss_error")
        assert await signed_in(tab)
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script],
            cwd=REPO,
            check=True,
            env={**os.environ, "WORKROOM_NOTIFY": "local"},
        )
        # Heard within the change check's interval; the next event is then refused.
        assert await wait_for(lambda: _forgotten(tab), timeout=3)
        await tab.send(GenerateState, "dismiss_error")
        assert not await signed_in(tab)

    async def _forgotten(tab) -> bool:  # noqa: ANN001
        return len(live_logins) == 0

    with_guard_listening(scenario)


# ------------------------------------------------------------------- the memory itself


class _Feed:
    def __init__(self) -> None:
        self.listening = asyncio.Event()
        self.subscribers: list = []

    def subscribe(self, callback, on_resync=None) -> None:  # noqa: ANN001
        self.subscribers.append(callback)

    def unsubscribe(self, callback) -> None:  # noqa: ANN001
        self.subscribers.remove(callback)


def _listening(seconds: float = 2.0) -> tuple[LiveLogins, _Feed]:
    logins = LiveLogins(seconds)
    feed = _Feed()
    feed.listening.set()
    logins.listen(feed)  # type: ignore[arg-type]
    return logins, feed


def test_an_answer_read_before_a_change_is_not_kept():
    logins, _feed = _listening()
    later = clock.now() + timedelta(days=1)
    epoch = logins.epoch
    logins.forget_account(7)  # a login of account 7 changed while the check was reading
    logins.remember("h", 7, later, epoch)
    assert logins.account_of("h") is None
    logins.remember("h", 7, later, logins.epoch)
    assert logins.account_of("h") == 7
    logins.stop()


def test_nothing_is_kept_past_the_logins_expiry_or_the_time_bound_or_without_a_listener():
    logins, feed = _listening(seconds=0.05)
    logins.remember("expired", 1, clock.now() - timedelta(seconds=1), logins.epoch)
    assert logins.account_of("expired") is None
    logins.remember("brief", 1, clock.now() + timedelta(days=1), logins.epoch)
    assert logins.account_of("brief") == 1
    time.sleep(0.06)
    assert logins.account_of("brief") is None

    logins.remember("h", 1, clock.now() + timedelta(days=1), logins.epoch)
    feed.listening.clear()  # the listener lost its connection: changes may go unheard
    assert logins.account_of("h") is None
    logins.stop()


def test_a_session_change_heard_from_another_process_forgets_only_that_account():
    logins, feed = _listening()
    later = clock.now() + timedelta(days=1)
    logins.remember("ann-1", 1, later, logins.epoch)
    logins.remember("ann-2", 1, later, logins.epoch)
    logins.remember("bob", 2, later, logins.epoch)
    for callback in feed.subscribers:
        callback(notifications.Change(1, frozenset({notifications.BALANCE})))
    assert logins.account_of("ann-1") == 1  # a balance change ends no login
    for callback in feed.subscribers:
        callback(notifications.Change(1, frozenset({notifications.SESSION})))
    assert logins.account_of("ann-1") is None and logins.account_of("ann-2") is None
    assert logins.account_of("bob") == 2
    logins.stop()


def test_a_commit_in_this_process_forgets_before_it_returns(app_db):
    ann = sign_up(app_db, "ann@example.com")
    with write_session(app_db) as s:
        token = accounts.create_login(s, ann)
    logins, _feed = _listening()
    hashed = accounts.token_hash(token)
    logins.remember(hashed, ann, clock.now() + timedelta(days=1), logins.epoch)
    with write_session(app_db) as s:
        accounts.revoke_login(s, token)
    assert logins.account_of(hashed) is None
    logins.stop()


def test_a_login_ended_by_another_process_on_postgresql_is_forgotten_when_its_notify_arrives(
    pg_engine, monkeypatch
):
    monkeypatch.setattr(db, "get_engine", lambda url=None: pg_engine)
    monkeypatch.setenv("WORKROOM_NOTIFY", "auto")
    settings.get_settings.cache_clear()
    ann = sign_up(pg_engine, "ann@example.com")
    with write_session(pg_engine) as s:
        token = accounts.create_login(s, ann)
    hashed = accounts.token_hash(token)
    # Another process: its own connection, a Core transaction (no ORM commit hook of this
    # process runs), announcing the change as billing code does.
    other = db.make_engine(pg_engine.url.render_as_string(hide_password=False))

    async def main() -> float:
        async with notifications.ChangeFeed(pg_engine) as feed:
            logins = LiveLogins()
            logins.listen(feed)
            try:
                with read_session(pg_engine) as s:
                    account_id, expires_at = accounts.live_login(s, hashed)
                logins.remember(hashed, account_id, expires_at, logins.epoch)
                assert logins.account_of(hashed) == ann
                with other.begin() as conn:
                    conn.execute(
                        update(AuthSession)
                        .where(AuthSession.token_hash == hashed)
                        .values(revoked_at=clock.now())
                    )
                    notifications.announce(conn, ann, notifications.SESSION)
                    assert logins.account_of(hashed) == ann  # not committed yet
                committed = time.monotonic()
                while logins.account_of(hashed) is not None:
                    assert time.monotonic() - committed < 2, "the NOTIFY never arrived"
                    await asyncio.sleep(0.005)
                return time.monotonic() - committed
            finally:
                logins.stop()

    try:
        heard_after = asyncio.run(main())
    finally:
        other.dispose()
        settings.get_settings.cache_clear()
    assert heard_after < 2
