"""Auth and session states driven through Reflex's real event processing path.

Events are queued on a BaseStateEventProcessor exactly as the websocket
handler queues what a browser sends, so argument coercion, unknown arguments
and the state tree behave as in production. A browser can call any handler
with anything: forged calls must be refused and change nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from reflex.istate.manager.token import BaseStateToken
from reflex.state import State
from sqlmodel import select

from tests.reflex_events import EventBrowser, run as run_events
import workroom_app.workroom_app as workroom  # registers every state, like the server
from workroom_app import db
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, AuthSession, LedgerEntry, Role
from workroom_app.state.auth import AuthState
from workroom_app.state.session import SessionState

PASSWORD = "correct horse"


class Browser(EventBrowser):
    path = "/login"

    async def send(self, state_cls, handler: str, **payload: Any) -> None:
        event = self.event(state_cls, handler, payload)
        future = await self.processor.enqueue(self.token, event)
        if not self.is_registered(event):
            # The server logs "No registered handler" and runs nothing: give the
            # queue a moment and move on.
            await asyncio.sleep(0.2)
            return
        try:
            await asyncio.wait_for(future.wait_all(), 10)
        except TimeoutError:
            raise AssertionError(f"{handler} did not finish") from None
        except Exception:  # a refused forged call surfaces here; the checks below decide
            pass


@pytest.fixture
def app_db(engine, monkeypatch):
    """The app's database, on both engines."""
    monkeypatch.setattr(db, "get_engine", lambda url=None: engine)
    return engine


@pytest.fixture
def sqlite_app_db(sqlite_engine, monkeypatch):
    """For checks of what the state accepts, which do not depend on the engine."""
    monkeypatch.setattr(db, "get_engine", lambda url=None: sqlite_engine)
    return sqlite_engine


def run(scenario):
    run_events(Browser, scenario)


def _make_account(engine, email="ann@example.com", role=Role.USER) -> int:
    with write_session(engine) as s:
        return accounts.sign_up(s, email, PASSWORD, "Ann", role=role).id


def _counts(engine) -> tuple[int, int, int]:
    with read_session(engine) as s:
        return (
            len(s.exec(select(Account)).all()),
            len(s.exec(select(AuthSession)).all()),
            len(s.exec(select(LedgerEntry)).all()),
        )


def test_log_in_signs_the_browser_in(app_db):
    account_id = _make_account(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(AuthState, "log_in", form_data={"email": "Ann@Example.com", "password": PASSWORD})
        session = await tab.state(SessionState)
        assert session._account_id == account_id
        assert session.signed_in and session.email == "ann@example.com"
        assert session.balance == 50 and session.balance_text == "50"
        assert session.plan_name == "Free" and session.is_staff is False
        with read_session(app_db) as s:
            assert accounts.lookup_session(s, session.auth_token).id == account_id

    run(scenario)


def test_wrong_password_shows_the_message_and_signs_nobody_in(app_db):
    _make_account(app_db)
    before = _counts(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(AuthState, "log_in", form_data={"email": "ann@example.com", "password": "nope-nope"})
        auth = await tab.state(AuthState)
        assert auth.error == "Wrong email or password."
        assert auth.submitting is False
        session = await tab.state(SessionState)
        assert session._account_id is None and not session.signed_in and session.auth_token == ""

    run(scenario)
    assert _counts(app_db) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"form_data": 5},
        {"form_data": "email=ann@example.com"},
        {"form_data": ["ann@example.com", PASSWORD]},
        {"form_data": {"email": ["ann@example.com"], "password": PASSWORD}},
        {"form_data": {"email": "ann@example.com", "password": {"$ne": ""}}},
        {"form_data": {"email": "ann@example.com", "password": "x" * 100_000}},
        {"form_data": {"email": "ann@example.com", "password": PASSWORD}, "account_id": 1},
        {},
    ],
    ids=["int", "string", "list", "email-list", "password-dict", "huge", "extra-account-id", "missing"],
)
def test_forged_log_in_is_refused_and_changes_nothing(sqlite_app_db, payload):
    _make_account(sqlite_app_db)
    before = _counts(sqlite_app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(AuthState, "log_in", **payload)
        session = await tab.state(SessionState)
        assert session._account_id is None and not session.signed_in

    run(scenario)
    assert _counts(sqlite_app_db) == before


def test_sign_up_ignores_a_forged_role_and_grants_the_trial_once(app_db):
    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/signup"
        form = {"email": "new@example.com", "password": PASSWORD, "confirm_password": PASSWORD,
                "display_name": "New", "role": "staff", "is_staff": True, "balance": 10**6}
        await tab.send(AuthState, "sign_up", form_data=form)
        session = await tab.state(SessionState)
        assert session.signed_in and session.balance == 50 and session.is_staff is False
        # The same form again (double submit, retry): refused, nothing granted twice.
        other = new_browser()
        await other.send(AuthState, "sign_up", form_data=form)
        assert "already exists" in (await other.state(AuthState)).error

    run(scenario)
    with read_session(app_db) as s:
        account = accounts.find_account(s, "new@example.com")
        assert account.role == Role.USER
        assert ledger.balance(s, account.id) == 50
        assert len(s.exec(select(LedgerEntry)).all()) == 1


def test_sign_up_with_mismatched_passwords_is_refused(sqlite_app_db):
    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(AuthState, "sign_up", form_data={
            "email": "new@example.com", "password": PASSWORD, "confirm_password": PASSWORD + "x"})
        assert (await tab.state(AuthState)).error == "The two passwords do not match."

    run(scenario)
    assert _counts(sqlite_app_db) == (0, 0, 0)


def test_browser_cannot_set_session_vars(sqlite_app_db):
    _make_account(sqlite_app_db, email="boss@example.com", role=Role.STAFF)
    victim = _make_account(sqlite_app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(AuthState, "log_in", form_data={"email": "ann@example.com", "password": PASSWORD})
        for name, value in [("is_staff", True), ("balance", 999_999), ("_account_id", 1),
                            ("signed_in", True), ("email", "boss@example.com")]:
            await tab.send(SessionState, "setvar", var_name=name, value=value)
        for handler in ["set_is_staff", "set_balance", "_apply", "_sign_in", "_set_balance"]:
            await tab.send(SessionState, handler, value=True)
        await tab.send(SessionState, "refresh_balance", account_id=1)
        session = await tab.state(SessionState)
        assert session._account_id == victim
        assert session.is_staff is False
        assert session.email == "ann@example.com"
        assert session.balance == 50

    run(scenario)


def test_guard_sends_signed_out_visitors_to_login_and_ignores_forged_tokens(app_db):
    account_id = _make_account(app_db)
    with write_session(app_db) as s:
        token = accounts.create_login(s, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/home"
        root = await tab.manager.get_state(BaseStateToken(ident=tab.token, cls=State))
        session = await root.get_state(SessionState)
        # A cookie the browser made up: looked up, not trusted.
        session.auth_token = "forged-" + token
        await tab.send(SessionState, "guard")
        session = await tab.state(SessionState)
        assert session._account_id is None and not session.signed_in
        # The real token signs the tab in; after logout it no longer works.
        session.auth_token = token
        await tab.send(SessionState, "guard")
        assert (await tab.state(SessionState))._account_id == account_id
        await tab.send(SessionState, "logout")
        session = await tab.state(SessionState)
        assert session._account_id is None and session.auth_token == ""
        session.auth_token = token  # a copy of the old cookie
        await tab.send(SessionState, "guard")
        assert (await tab.state(SessionState))._account_id is None

    run(scenario)
    with read_session(app_db) as s:
        assert accounts.lookup_session(s, token) is None


def test_health_route_pings_the_database(sqlite_app_db, monkeypatch, tmp_path):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    api = Starlette(routes=[r for r in workroom.API_ROUTES if r.path == "/api/health"])
    with TestClient(api) as client:
        ok = client.get("/api/health")
        assert ok.status_code == 200 and ok.json() == {"status": "ok"}
        # A folder where the database file should be: SQLite cannot open it.
        (tmp_path / "is-a-folder").mkdir()
        broken = db.make_engine(f"sqlite:///{tmp_path / 'is-a-folder'}")
        monkeypatch.setattr(db, "get_engine", lambda url=None: broken)
        down = client.get("/api/health")
        assert down.status_code == 503 and down.json()["status"] == "error"
