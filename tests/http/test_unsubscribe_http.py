"""One-click unsubscribe links in alert emails, through the app's real routes (API_ROUTES):
the body link and the RFC 8058 headers turn that alert kind's email off for that account
without logging in; a tampered, expired or other-kind link is refused with a clear page
and changes nothing; the signing secret never reaches the log."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.subscriptions import sign_up
from workroom_app import db
from workroom_app.billing import alerts, clock, receipts
from workroom_app.db import read_session, write_session
from workroom_app.models import AccountAlert, AlertKind, OutboxEmail
from workroom_app.security import signing
from workroom_app.workroom_app import API_ROUTES

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def client(sqlite_engine, monkeypatch):
    monkeypatch.setattr(db, "get_engine", lambda url=None: sqlite_engine)
    with clock.pinned(NOW), TestClient(Starlette(routes=API_ROUTES)) as c:
        yield c


def alert_email(engine, acct, kind=AlertKind.LOW_BALANCE, n=1) -> OutboxEmail:
    with write_session(engine) as s:
        alerts.notify(
            s,
            acct,
            kind,
            title=f"Alert {kind} {n}",
            body="Something happened.",
            dedupe_key=f"t:{kind}:{n}",
        )
    with read_session(engine) as s:
        return s.exec(
            select(OutboxEmail).where(OutboxEmail.dedupe_key == f"alert:t:{kind}:{n}")
        ).first()


def link_in(mail: OutboxEmail) -> str:
    [url] = re.findall(r"Stop these emails with one click: (\S+)", mail.body_text)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def settings_of(engine, acct) -> alerts.Settings:
    with read_session(engine) as s:
        return alerts.read_settings(s, acct)


def test_the_body_link_and_the_headers_turn_that_email_off(client, sqlite_engine):
    acct = sign_up(sqlite_engine)
    mail = alert_email(sqlite_engine, acct)
    with read_session(sqlite_engine) as s:
        msg = receipts.build_message(s, mail, "billing@workroom.test")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header_url = msg["List-Unsubscribe"].strip("<>")
    assert urlsplit(header_url).path == "/api/alerts/unsubscribe/low_balance"
    path = link_in(mail)
    page = client.get(path)
    assert page.status_code == 200 and "Stop low balance emails?" in page.text
    assert settings_of(sqlite_engine, acct).email_low_balance  # a GET changes nothing
    done = client.post(path)
    assert done.status_code == 200 and "no longer get low balance emails" in done.text
    after = settings_of(sqlite_engine, acct)
    assert not after.email_low_balance
    assert after.email_payment_failed and after.email_plan_ended and after.email_credits_expiring
    # The alert still shows in the app; its email is no longer written.
    second = alert_email(sqlite_engine, acct, n=2)
    assert second is None
    with read_session(sqlite_engine) as s:
        assert s.exec(
            select(AccountAlert).where(AccountAlert.dedupe_key == "t:low_balance:2")
        ).first()
    assert client.post(path).status_code == 200  # twice: still off, no error


def test_a_mail_clients_one_click_post_works_from_anywhere(client, sqlite_engine):
    acct = sign_up(sqlite_engine)
    mail = alert_email(sqlite_engine, acct, AlertKind.PAYMENT_FAILED)
    with read_session(sqlite_engine) as s:
        header_url = receipts.build_message(s, mail, "x@workroom.test")["List-Unsubscribe"]
    parts = urlsplit(header_url.strip("<>"))
    answer = client.post(
        f"{parts.path}?{parts.query}",
        content=b"List-Unsubscribe=One-Click",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://mail.example",
        },
    )
    assert answer.status_code == 200
    assert not settings_of(sqlite_engine, acct).email_payment_failed
    assert settings_of(sqlite_engine, acct).email_low_balance


def test_receipts_have_no_unsubscribe_header(sqlite_engine):
    acct = sign_up(sqlite_engine)
    with write_session(sqlite_engine) as s:
        s.add(
            OutboxEmail(
                account_id=acct,
                to_address="a@example.com",
                subject="Receipt",
                body_text="Paid.",
                dedupe_key="receipt:1",
                created_at=NOW,
            )
        )
    with read_session(sqlite_engine) as s:
        mail = s.exec(select(OutboxEmail).where(OutboxEmail.dedupe_key == "receipt:1")).one()
        assert receipts.build_message(s, mail, "x@workroom.test")["List-Unsubscribe"] is None


def bad_links(acct: int, path: str) -> list[tuple[str, str]]:
    kind_path, _, query = path.partition("?")
    token = query.removeprefix("token=")
    return [
        (f"{kind_path}?token={token[:-3]}abc", "not valid"),  # tampered
        (f"{kind_path}?token=", "not valid"),  # cut short
        (kind_path, "not valid"),  # no token
        (path.replace("/low_balance?", "/plan_ended?"), "another kind of email"),
        (path.replace("/low_balance?", "/auto_top_up?"), "another kind of email"),
        # Signed with the same secret for something else (the email-confirmation link).
        (f"{kind_path}?token={signing.confirmation_token(acct, 'a@example.com')}", "not valid"),
    ]


def test_tampered_and_other_kind_links_are_refused_and_change_nothing(client, sqlite_engine):
    acct = sign_up(sqlite_engine)
    path = link_in(alert_email(sqlite_engine, acct))
    before = settings_of(sqlite_engine, acct)
    for bad, words in bad_links(acct, path):
        for response in (client.get(bad), client.post(bad)):
            assert response.status_code == 400, bad
            assert words in response.text and "Unsubscribe link not valid" in response.text
    assert settings_of(sqlite_engine, acct) == before


def test_an_expired_link_is_refused(client, sqlite_engine, monkeypatch):
    acct = sign_up(sqlite_engine)
    path = link_in(alert_email(sqlite_engine, acct))
    monkeypatch.setattr(signing, "UNSUBSCRIBE_MAX_AGE", -1)  # every link is now too old
    response = client.post(path)
    assert response.status_code == 400 and "expired" in response.text
    assert settings_of(sqlite_engine, acct).email_low_balance


def test_the_secret_never_reaches_the_log(client, sqlite_engine, caplog):
    caplog.set_level(logging.DEBUG)
    acct = sign_up(sqlite_engine)
    path = link_in(alert_email(sqlite_engine, acct))
    for bad, _ in bad_links(acct, path):
        client.post(bad)
    client.post(path)
    secret = signing._secret()
    assert secret and secret not in caplog.text
