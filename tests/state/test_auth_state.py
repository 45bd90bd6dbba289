"""Auth and session states driven through Reflex's real event processing path.

Events are queued on a BaseStateEventProcessor exactly as the websocket
handler queues what a browser sends, so argument coercion, unknown arguments
and the state tree behave as in production. A browser can call any handler
with anything: forged calls must be refused and change nothing.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

import workroom_app.workroom_app as workroom  # registers every state, like the server
from tests.support.factories import PASSWORD, sign_up
from tests.support.fixtures import BOTH_ENGINES, serve_database
from tests.support.pages import LoginTab, runner
from tests.support.reflex_events import redeem, ticket_in
from workroom_app import db
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, AuthSession, LedgerEntry, Role
from workroom_app.state.auth import AuthState
from workroom_app.state.session import SessionState

run = runner(LoginTab)


def _counts(engine) -> tuple[int, int, int]:
    with read_session(engine) as s:
        return (
            len(s.exec(select(Account)).all()),
            len(s.exec(select(AuthSession)).all()),
            len(s.exec(select(LedgerEntry)).all()),
        )


@BOTH_ENGINES
def test_log_in_signs_the_browser_in(app_db):
    account_id = sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        sent = await tab.send(
            AuthState, "log_in", form_data={"email": "Ann@Example.com", "password": PASSWORD}
        )
        # The event itself signs nobody in and hands the page no session token: only a one-time
        # ticket, which the server trades for the HttpOnly cookie.
        ticket = ticket_in(sent)
        assert ticket and (await tab.state(SessionState))._account_id is None
        with read_session(app_db) as s:
            assert accounts.lookup_session(s, ticket) is None
        tab.cookie = redeem(ticket)
        assert tab.cookie != ticket and tab.cookie not in sent
        await tab.send(SessionState, "guard")
        session = await tab.state(SessionState)
        assert session._account_id == account_id
        assert session.signed_in and session.email == "ann@example.com"
        assert session.balance == 50 and session.balance_text == "50"
        assert session.plan_name == "Free" and session.is_staff is False
        with read_session(app_db) as s:
            assert accounts.lookup_session(s, tab.cookie).id == account_id
        # The ticket works once.
        from tests.support.reflex_events import api_client

        again = api_client().post(
            "/api/auth/session", data={"ticket": ticket}, follow_redirects=False
        )
        assert again.status_code == 303 and again.headers["location"] == "/login"
        assert "workroom_session" not in again.headers.get("set-cookie", "")

    run(scenario)


@BOTH_ENGINES
def test_wrong_password_shows_the_message_and_signs_nobody_in(app_db):
    sign_up(app_db, "ann@example.com")
    before = _counts(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(
            AuthState, "log_in", form_data={"email": "ann@example.com", "password": "nope-nope"}
        )
        auth = await tab.state(AuthState)
        assert auth.error == "Wrong email or password."
        assert auth.submitting is False
        session = await tab.state(SessionState)
        assert session._account_id is None and not session.signed_in and tab.cookie == ""

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
    ids=[
        "int",
        "string",
        "list",
        "email-list",
        "password-dict",
        "huge",
        "extra-account-id",
        "missing",
    ],
)
def test_forged_log_in_is_refused_and_changes_nothing(app_db, payload):
    sign_up(app_db, "ann@example.com")
    before = _counts(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        # A missing or unknown argument: Reflex refuses the event before the handler runs. A
        # form_data of the wrong shape reaches the handler, which must answer it.
        refused = None if set(payload) == {"form_data"} else TypeError
        await tab.send(AuthState, "log_in", refused=refused, **payload)
        session = await tab.state(SessionState)
        assert session._account_id is None and not session.signed_in

    run(scenario)
    assert _counts(app_db) == before


@BOTH_ENGINES
def test_sign_up_ignores_a_forged_role_and_grants_the_trial_once_confirmed(app_db):
    """The trial follows the confirmation link, not the sign-up itself."""

    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/signup"
        form = {
            "email": "new@example.com",
            "password": PASSWORD,
            "confirm_password": PASSWORD,
            "display_name": "New",
            "role": "staff",
            "is_staff": True,
            "balance": 10**6,
        }
        assert await tab.submit_and_follow("sign_up", form)
        session = await tab.state(SessionState)
        assert session.signed_in and session.balance == 0 and session.is_staff is False
        assert session.email_confirmed is False
        # The same form again (double submit, retry): refused, nothing granted twice.
        other = new_browser()
        other.ip = "10.0.0.2"
        await other.send(AuthState, "sign_up", form_data=form)
        assert "already exists" in (await other.state(AuthState)).error

    run(scenario)
    with read_session(app_db) as s:
        account = accounts.find_account(s, "new@example.com")
        assert account.role == Role.USER and account.email_confirmed_at is None
        assert ledger.balance(s, account.id) == 0
        assert len(s.exec(select(LedgerEntry)).all()) == 0


def test_sign_up_with_mismatched_passwords_is_refused(app_db):
    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(
            AuthState,
            "sign_up",
            form_data={
                "email": "new@example.com",
                "password": PASSWORD,
                "confirm_password": PASSWORD + "x",
            },
        )
        assert (await tab.state(AuthState)).error == "The two passwords do not match."

    run(scenario)
    assert _counts(app_db) == (0, 0, 0)


def test_browser_cannot_set_session_vars(app_db):
    sign_up(app_db, "boss@example.com", role=Role.STAFF)
    victim = sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        assert await tab.submit_and_follow(
            "log_in", {"email": "ann@example.com", "password": PASSWORD}
        )
        for name, value in [
            ("is_staff", True),
            ("balance", 999_999),
            ("_account_id", 1),
            ("signed_in", True),
            ("email", "boss@example.com"),
        ]:
            # Reflex refuses it: no setter of that name exists.
            await tab.send(
                SessionState, "setvar", var_name=name, value=value, refused=AttributeError
            )
        for handler in ["set_is_staff", "set_balance", "_apply", "_sign_in", "_set_balance"]:
            await tab.send(SessionState, handler, value=True)
        # No such argument: Reflex refuses the event.
        await tab.send(SessionState, "refresh_balance", account_id=1, refused=TypeError)
        session = await tab.state(SessionState)
        assert session._account_id == victim
        assert session.is_staff is False
        assert session.email == "ann@example.com"
        assert session.balance == 50

    run(scenario)


@BOTH_ENGINES
def test_guard_sends_signed_out_visitors_to_login_and_ignores_forged_tokens(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    with write_session(app_db) as s:
        token = accounts.create_login(s, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/home"
        # A cookie the browser made up: looked up, not trusted.
        tab.cookie = "forged-" + token
        sent = await tab.send(SessionState, "guard")
        session = await tab.state(SessionState)
        assert session._account_id is None and not session.signed_in
        assert "/login" in sent
        # The real token signs the tab in; after logout it no longer works.
        tab.cookie = token
        await tab.send(SessionState, "guard")
        assert (await tab.state(SessionState))._account_id == account_id
        sent = await tab.send(SessionState, "logout")
        session = await tab.state(SessionState)
        assert session._account_id is None
        assert "/api/auth/logout" in sent  # the server clears the HttpOnly cookie
        await tab.send(SessionState, "guard")  # the old cookie, still in the browser
        assert (await tab.state(SessionState))._account_id is None

    run(scenario)
    with read_session(app_db) as s:
        assert accounts.lookup_session(s, token) is None


def test_health_route_pings_the_database(app_db, monkeypatch, tmp_path):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    api = Starlette(routes=[r for r in workroom.API_ROUTES if r.path == "/api/health"])
    with TestClient(api) as client:
        ok = client.get("/api/health")
        assert ok.status_code == 200 and ok.json() == {"status": "ok"}
        # A folder where the database file should be: SQLite cannot open it.
        (tmp_path / "is-a-folder").mkdir()
        broken = db.make_engine(f"sqlite:///{tmp_path / 'is-a-folder'}")
        serve_database(monkeypatch, broken)
        down = client.get("/api/health")
        assert down.status_code == 503 and down.json()["status"] == "error"


@pytest.mark.parametrize(
    "role, landing", [(Role.USER, "/generate"), (Role.ADMIN, "/staff"), (Role.SUPPORT, "/staff")]
)
@BOTH_ENGINES
def test_the_session_route_sends_each_account_to_its_landing_page(app_db, role, landing):
    from tests.support.reflex_events import api_client

    sign_up(app_db, f"{role.value}@example.com", role=role)

    async def scenario(new_browser):
        tab = new_browser()
        sent = await tab.send(
            AuthState,
            "log_in",
            form_data={"email": f"{role.value}@example.com", "password": PASSWORD},
        )
        ticket = ticket_in(sent)
        assert ticket
        out = api_client().post(
            "/api/auth/session", data={"ticket": ticket}, follow_redirects=False
        )
        assert out.status_code == 303 and out.headers["location"] == landing
        assert "workroom_session=" in out.headers.get("set-cookie", "")

    run(scenario)
