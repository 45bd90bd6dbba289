"""Security: rate limits, the email-confirmed trial, control characters, logs, HTTP body caps and
the smaller findings, each driven through the real event path or the app's HTTP routes."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from sqlmodel import select

from tests.support.factories import PASSWORD, sign_up
from tests.support.fixtures import BOTH_ENGINES
from tests.support.pages import LoginTab
from tests.support.reflex_events import (
    api_client,
    redeem,
    ticket_in,
)
from tests.support.reflex_events import (
    run as run_events,
)
from workroom_app.billing import accounts, ledger
from workroom_app.billing.email_identity import canonical_email
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, LedgerEntry, OutboxEmail, TrialClaim
from workroom_app.security import event_failures, hashing_pool, log_redaction
from workroom_app.state.auth import AuthState
from workroom_app.state.generate import GenerateState
from workroom_app.state.session import SessionState
from workroom_app.state.usage import UsageState


class Browser(LoginTab):
    timeout = 60.0  # many tabs at once here


def run(scenario):
    run_events(Browser, scenario)


def _signup_form(email: str, name: str = "New") -> dict[str, str]:
    return {
        "email": email,
        "password": PASSWORD,
        "confirm_password": PASSWORD,
        "display_name": name,
    }


def _confirmation_link(engine, email: str) -> str:
    with read_session(engine) as s:
        row = s.exec(
            select(OutboxEmail)
            .where(OutboxEmail.to_address == email)
            .order_by(OutboxEmail.id.desc())
        ).first()
    assert row is not None, f"no confirmation email to {email}"
    match = re.search(r"https?://\S+/api/auth/confirm\?token=\S+", row.body_text)
    assert match, row.body_text
    return match.group(0)


def _open_link(link: str):
    from urllib.parse import urlsplit

    parts = urlsplit(link)
    return api_client().get(f"{parts.path}?{parts.query}")


# ------------------------------------------------------------------ log-in limits


def test_wrong_passwords_on_one_socket_are_cut_off_with_a_retry_time(app_db):
    """Finding 4: 25 wrong passwords and then the right one were all accepted on one socket."""
    sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        messages = []
        for _ in range(25):
            await tab.send(
                AuthState,
                "log_in",
                form_data={"email": "ann@example.com", "password": "wrong-wrong"},
            )
            messages.append((await tab.state(AuthState)).error)
        assert messages[:5] == ["Wrong email or password."] * 5
        assert all(
            re.fullmatch(r"Too many log-in attempts\. Try again in \d+ (second|minute)s?\.", m)
            for m in messages[5:]
        ), messages[5:]
        # The right password is refused too until the wait is over: no guessing through the limit.
        sent = await tab.send(
            AuthState, "log_in", form_data={"email": "ann@example.com", "password": PASSWORD}
        )
        assert ticket_in(sent) is None
        assert (await tab.state(AuthState)).error.startswith("Too many log-in attempts")
        # Another account from another address is not affected.
        sign_up(app_db, "bob@example.com")
        other = new_browser()
        other.ip = "10.0.0.9"
        sent = await other.send(
            AuthState, "log_in", form_data={"email": "bob@example.com", "password": PASSWORD}
        )
        assert ticket_in(sent)

    run(scenario)


def test_many_accounts_from_one_address_are_cut_off(app_db, monkeypatch):
    from argon2 import PasswordHasher

    # Unknown emails still cost a hash (timing); a cheap one keeps this test fast.
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )

    async def scenario(new_browser):
        tab = new_browser()
        errors = []
        for i in range(25):
            await tab.send(
                AuthState,
                "log_in",
                form_data={"email": f"user{i}@example.com", "password": "guess-guess"},
            )
            errors.append((await tab.state(AuthState)).error)
        assert errors[:20] == ["Wrong email or password."] * 20
        assert all(e.startswith("Too many log-in attempts. Try again in") for e in errors[20:])

    run(scenario)


@pytest.mark.slow  # hundreds of real password hashes
def test_a_log_in_flood_stays_correct_and_leaves_health_answering(app_db):
    """32 clients (distinct addresses) send wrong log-ins at once while a real user logs in:
    nobody gets in with a wrong password, every attempt gets an answer, hashing never runs
    more than its bounded pool at once, /api/health answers during the flood, and the real
    user gets in (retrying when told the server is busy). Timing is in benchmarks/."""
    sign_up(app_db, "ann@example.com")
    peak = {"value": 0}
    real_run = hashing_pool.run

    async def watched(fn, *args, address=""):
        peak["value"] = max(peak["value"], hashing_pool.in_flight() + 1)
        return await real_run(fn, *args, address=address)

    async def scenario(new_browser):
        hashing_pool_run = hashing_pool.run
        import workroom_app.state.auth as auth_module

        auth_module.hashing_pool.run = watched
        try:

            async def attacker(i):
                tab = new_browser()
                tab.ip = f"10.1.0.{i}"
                answers = []
                for n in range(3):
                    sent = await tab.send(
                        AuthState,
                        "log_in",
                        form_data={
                            "email": f"ann{n}@example.com" if i % 2 else "ann@example.com",
                            "password": f"guess-{i}-{n}",
                        },
                    )
                    assert ticket_in(sent) is None
                    answers.append((await tab.state(AuthState)).error)
                return answers

            async def real_user():
                tab = new_browser()
                tab.ip = "10.2.0.1"
                for _attempt in range(40):
                    sent = await tab.send(
                        AuthState,
                        "log_in",
                        form_data={"email": "ann@example.com", "password": PASSWORD},
                    )
                    if ticket_in(sent):
                        return True
                    error = (await tab.state(AuthState)).error
                    assert error in (hashing_pool.BUSY_MESSAGE,) or error.startswith("Too many"), (
                        error
                    )
                    await asyncio.sleep(0.25)
                return False

            async def health():
                return await asyncio.to_thread(lambda: api_client().get("/api/health").status_code)

            results = await asyncio.gather(*(attacker(i) for i in range(32)), real_user(), health())
        finally:
            auth_module.hashing_pool.run = hashing_pool_run
        *floods, user_ok, health_status = results
        allowed = {"Wrong email or password.", hashing_pool.BUSY_MESSAGE}
        for answers in floods:
            assert all(a in allowed or a.startswith("Too many log-in attempts") for a in answers), (
                answers
            )
        assert health_status == 200
        assert user_ok is not False

    run(scenario)
    assert peak["value"] <= hashing_pool.HASH_THREADS + hashing_pool.MAX_WAITING


# ------------------------------------------------------------------ sign-ups and the trial


@BOTH_ENGINES
def test_sign_up_farming_from_one_address_gets_three_accounts_and_no_credits(app_db):
    """Finding 4: 20 sign-ups from one client in 30 seconds collected 1,000 trial credits."""

    async def scenario(new_browser):
        errors = []
        for i in range(20):
            tab = new_browser()  # a fresh tab each time, all from the same address
            tab.path = "/signup"
            await tab.send(AuthState, "sign_up", form_data=_signup_form(f"farm{i}@example.com"))
            errors.append((await tab.state(AuthState)).error)
        refused = [e for e in errors if e]
        assert len(refused) == 17
        assert all(
            re.fullmatch(
                r"Too many sign-ups from your network\. Try again in \d+ (minutes?|hours?)\.", e
            )
            for e in refused
        ), sorted(set(refused))

    run(scenario)
    with read_session(app_db) as s:
        assert len(s.exec(select(Account)).all()) == 3
        assert s.exec(select(LedgerEntry)).all() == []  # nothing before a confirmed address


@BOTH_ENGINES
def test_the_trial_follows_the_confirmation_link_once_per_mailbox(app_db):
    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/signup"
        sent = await tab.send(
            AuthState, "sign_up", form_data=_signup_form("Jane.Doe+work@Gmail.com")
        )
        tab.cookie = redeem(ticket_in(sent))
        await tab.send(SessionState, "guard")
        session = await tab.state(SessionState)
        assert session.balance == 0 and session.email_confirmed is False
        link = _confirmation_link(app_db, "jane.doe+work@gmail.com")
        page = _open_link(link)
        assert page.status_code == 200 and "50 trial credits were added" in page.text
        assert _open_link(link).status_code == 200  # opened twice: nothing more
        await tab.send(SessionState, "refresh_balance")
        session = await tab.state(SessionState)
        assert session.balance == 50 and session.email_confirmed is True

        # The same Gmail mailbox spelled differently: an account, but no second trial.
        other = new_browser()
        other.path, other.ip = "/signup", "10.3.0.1"
        sent = await other.send(
            AuthState, "sign_up", form_data=_signup_form("janedoe@googlemail.com")
        )
        assert ticket_in(sent)
        page = _open_link(_confirmation_link(app_db, "janedoe@googlemail.com"))
        assert page.status_code == 200 and "already received" in page.text
        # A forged or edited link confirms nothing.
        assert _open_link(link[:-3] + "abc").status_code == 400

    run(scenario)
    with read_session(app_db) as s:
        jane = accounts.find_account(s, "jane.doe+work@gmail.com")
        twin = accounts.find_account(s, "janedoe@googlemail.com")
        assert ledger.balance(s, jane.id) == 50 and ledger.balance(s, twin.id) == 0
        assert twin.email_confirmed_at is not None
        assert [c.canonical_email for c in s.exec(select(TrialClaim)).all()] == [
            "janedoe@gmail.com"
        ]


def test_canonical_email_rule():
    assert canonical_email("Jane.Doe+news@GMail.com") == "janedoe@gmail.com"
    assert canonical_email("j.a.n.e@googlemail.com") == "jane@gmail.com"
    assert (
        canonical_email("Jane.Doe+news@example.com") == "jane.doe@example.com"
    )  # dots kept elsewhere
    assert canonical_email("JANE@Example.COM") == "jane@example.com"
    assert canonical_email("jane.doe@example.com") != canonical_email("janedoe@example.com")


def test_resending_the_confirmation_is_rate_limited(app_db):
    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/signup"
        sent = await tab.send(AuthState, "sign_up", form_data=_signup_form("new@example.com"))
        tab.cookie = redeem(ticket_in(sent))
        await tab.send(SessionState, "guard")
        for _ in range(3):
            assert "We sent a new link" in await tab.send(SessionState, "resend_confirmation")
        assert "Too many confirmation emails" in await tab.send(SessionState, "resend_confirmation")

    run(scenario)
    with read_session(app_db) as s:
        assert (
            len(
                s.exec(select(OutboxEmail).where(OutboxEmail.to_address == "new@example.com")).all()
            )
            == 4
        )


def test_demo_accounts_stay_confirmed_with_their_trial(app_db):
    from workroom_app.seed import DEMO_LOGINS, ensure_account

    with write_session(app_db) as s:
        account, _ = ensure_account(s, DEMO_LOGINS[1])
    with read_session(app_db) as s:
        account = s.get(Account, account.id)
        assert account.email_confirmed_at is not None and ledger.balance(s, account.id) == 50


# ------------------------------------------------------------------ control characters


@BOTH_ENGINES
def test_nul_in_the_display_name_is_refused_by_name_on_both_engines(app_db):
    """Finding 6: a NUL in the display name made sign-up fail on PostgreSQL with
    "Something went wrong" (SQLite stored it)."""

    async def scenario(new_browser):
        tab = new_browser()
        tab.path = "/signup"
        sent = await tab.send(
            AuthState, "sign_up", form_data=_signup_form("nul@example.com", "Ann\x00Lee")
        )
        assert "Display name contains a control character" in sent
        assert "Something went wrong" not in sent and ticket_in(sent) is None

    run(scenario)
    with read_session(app_db) as s:
        assert s.exec(select(Account)).all() == []
    # The billing layer refuses it too (the CLI and seeders do not pass through the event path).
    with (
        pytest.raises(accounts.AuthError, match="Display name contains a control character"),
        write_session(app_db) as s,
    ):
        accounts.register(s, "nul@example.com", PASSWORD, "Ann\x00Lee")


def test_control_characters_in_any_event_text_are_refused_naming_the_field(app_db):
    sign_up(app_db, "ann@example.com")
    with write_session(app_db) as s:
        token = accounts.create_login(s, accounts.find_account(s, "ann@example.com").id)

    async def scenario(new_browser):
        tab = new_browser()
        tab.cookie = token
        tab.path = "/generate"
        await tab.send(SessionState, "guard")
        sent = await tab.send(
            GenerateState,
            "submit",
            form_data={
                "feature": "image",
                "model": "flux_schnell",
                "resolution": "1K",
                "count": "1",
                "prompt": "a cat\x1b[2J",
                "request_id": "r-1",
                "shown_cost": "2",
            },
        )
        assert "Prompt contains a control character" in sent
        tab.path = "/usage"
        sent = await tab.send(UsageState, "set_date_from", value="2026-01-01\x00")
        assert "Value contains a control character" in sent

    run(scenario)
    with read_session(app_db) as s:
        from workroom_app.models import GenerationJob

        assert s.exec(select(GenerationJob)).all() == []


# ------------------------------------------------------------------ logs


def test_a_log_captured_while_events_fail_holds_no_cookie_token_or_password(app_db, caplog):
    """Finding 2: when an event failed, the server log printed the connection's headers."""
    sign_up(app_db, "ann@example.com")
    with write_session(app_db) as s:
        token = accounts.create_login(s, accounts.find_account(s, "ann@example.com").id)
    secret_password = "Sup3r-Secret-pw"
    card = "4242 4242 4242 4242"

    async def scenario(new_browser):
        tab = new_browser()
        tab.cookie = token
        tab.path = "/usage"
        await tab.send(SessionState, "guard")
        # Forged events that fail inside Reflex or the handler, carrying secrets in arguments.
        for _ in range(12):
            await tab.send(
                UsageState, "load", password=secret_password, card_number=card, refused=TypeError
            )
            await tab.send(SessionState, "refresh_balance", token=token, refused=TypeError)
        # Something that logs a dict of headers, the way Reflex logs a failing event.
        logging.getLogger("reflex.test").error(
            "Error processing event %s",
            {
                "router_data": {
                    "headers": {
                        "cookie": f"workroom_session={token}",
                        "authorization": "Bearer abc.def",
                    },
                    "token": tab.token,
                },
                "payload": {"password": secret_password, "number": card},
            },
        )
        return tab.token

    with caplog.at_level(logging.DEBUG):
        client_token = run_and_return(scenario)
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (token, client_token, secret_password, card, card.replace(" ", ""), "abc.def"):
        assert secret not in text, secret
    failures = [r for r in caplog.records if r.name == "workroom.events"]
    # 24 failing events: one short line each, at most LINES_PER_WINDOW in the window.
    assert 1 <= len(failures) <= event_failures.LINES_PER_WINDOW
    assert all("\n" not in r.getMessage() and r.exc_text is None for r in failures)


def run_and_return(scenario):
    out = {}

    async def wrapper(new_browser):
        out["value"] = await scenario(new_browser)

    run(wrapper)
    return out["value"]


def test_redaction_patterns():
    r = log_redaction.redact
    assert "abc" not in r("{'cookie': 'workroom_session=abc; other=1'}")
    assert "s3cr3t" not in r('{"password": "s3cr3t"}')
    assert "4111111111111111" not in r("card 4111111111111111 declined")
    assert "1234567890123" in r("order 1234567890123")  # not a card number (Luhn)
    assert "xyz" not in r("GET /api/auth/confirm?token=xyz HTTP/1.1")
    assert "tok" not in r("Authorization: Bearer tok")


# ------------------------------------------------------------------ HTTP


def test_the_webhook_refuses_a_chunked_body_past_1_mb_without_reading_it_all():
    """Finding 5: a chunked body (no Content-Length) was read whole into memory."""
    from starlette.applications import Starlette

    from workroom_app.security.body_limit import WEBHOOK_CAP, cap_request_bodies
    from workroom_app.workroom_app import API_ROUTES

    app = cap_request_bodies(Starlette(routes=API_ROUTES))
    chunk = b"x" * 65536
    pulled = {"n": 0}
    sent: list[dict] = []

    async def receive():
        pulled["n"] += 1
        return {
            "type": "http.request",
            "body": chunk,
            "more_body": pulled["n"] < 3200,
        }  # 200 MB offered

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/stripe/webhook",
        "raw_path": b"/api/stripe/webhook",
        "headers": [(b"transfer-encoding", b"chunked"), (b"stripe-signature", b"t=1,v1=0")],
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "app": None,
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert pulled["n"] <= WEBHOOK_CAP // len(chunk) + 2  # stopped at the cap, not 200 MB later


def test_every_route_caps_its_body_and_answers_413():
    client = api_client()
    big = b"x" * (64 * 1024 + 1)
    assert (
        client.post(
            "/api/auth/session",
            content=big,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status_code
        == 413
    )

    def chunks():
        for _ in range(40):
            yield b"y" * 32768

    # Chunked (no Content-Length): counted as it arrives.
    assert (
        client.post("/api/auth/session", content=chunks(), follow_redirects=False).status_code
        == 413
    )
    assert (
        client.post("/api/stripe/webhook", content=b"{" + b" " * (1024 * 1024) + b"}").status_code
        == 413
    )


def test_the_upload_endpoint_refuses_a_handler_that_is_not_an_upload_handler():
    from workroom_app.workroom_app import upload_handler_names

    names = upload_handler_names()
    assert any(n.endswith(".upload_face") for n in names) and not any(
        n.endswith(".logout") for n in names
    )
    response = api_client().post(
        "/_upload",
        content=b"--x--",
        headers={
            "reflex-client-token": "t",
            "reflex-event-handler": f"{SessionState.get_full_name()}.logout",
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    assert response.status_code == 400


def test_a_signed_stripe_event_stamped_an_hour_ahead_is_refused(sqlite_engine):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from tests.support.stripe_world import T0, make_world
    from workroom_app.billing import clock
    from workroom_app.http import stripe_routes
    from workroom_app.http.stripe_routes import WEBHOOK_PATH

    with clock.pinned(T0):
        world = make_world(sqlite_engine)
        app = Starlette(routes=stripe_routes(lambda: world.processor))
        event = world.standin.make_event("payout.paid", {"id": "po_1", "object": "payout"})
        with TestClient(app) as client:

            def post(ts):
                return client.post(
                    WEBHOOK_PATH,
                    content=event.payload.encode(),
                    headers={
                        "Stripe-Signature": world.standin.sign(event.payload, ts),
                        "Content-Type": "application/json",
                    },
                )

            ahead = post(int(time.time()) + 3600)
            assert ahead.status_code == 400 and "future" in ahead.json()["error"]
            assert world.events() == []
            assert post(int(time.time()) + 60).status_code == 200  # a minute of clock skew is fine
