"""The local 3-D Secure confirmation page through the app's real routes (API_ROUTES):
Confirm proceeds once, Fail authentication is a declined payment, other sites cannot
answer, an unknown token is a 404."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.billing.test_packs import buy
from tests.billing.test_payment_confirmation import ALWAYS
from tests.support.subscriptions import balance, invoices_of, sign_up
from workroom_app import db
from workroom_app.billing import clock
from workroom_app.security import log_redaction
from workroom_app.workroom_app import API_ROUTES

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def client(sqlite_engine, monkeypatch):
    monkeypatch.setattr(db, "get_engine", lambda url=None: sqlite_engine)
    with clock.pinned(NOW), TestClient(Starlette(routes=API_ROUTES)) as c:
        yield c


def waiting_pack(engine) -> tuple[int, str]:
    acct = sign_up(engine)
    out = buy(engine, acct, card=ALWAYS)
    assert out.requires_action
    return acct, out.confirm_url


def test_confirm_credits_the_pack_once(client, sqlite_engine):
    acct, url = waiting_pack(sqlite_engine)
    page = client.get(url)
    assert page.status_code == 200 and "Confirm this payment" in page.text
    assert "$6.00" in page.text and "Credit pack: 500 credits" in page.text
    assert "Visa ending in 3184" in page.text and page.headers["cache-control"] == "no-store"
    done = client.post(url, data={"answer": "confirm"})
    assert done.status_code == 200 and "500 credits were added" in done.text
    again = client.post(url, data={"answer": "confirm"})
    assert "already confirmed" in again.text
    assert balance(sqlite_engine, acct) == 550
    assert [i.status for i in invoices_of(sqlite_engine, acct)] == ["paid"]
    assert "already confirmed" in client.get(url).text


def test_the_token_is_blanked_in_logs(sqlite_engine, client):
    _, url = waiting_pack(sqlite_engine)
    token = url.split("?token=", 1)[1]
    assert token not in log_redaction.redact(f'"GET {url} HTTP/1.1" 200')


def test_fail_authentication_is_a_declined_payment(client, sqlite_engine):
    acct, url = waiting_pack(sqlite_engine)
    failed = client.post(url, data={"answer": "fail"})
    assert failed.status_code == 200 and "Payment failed" in failed.text
    assert "unable to authenticate" in failed.text
    assert [i.status for i in invoices_of(sqlite_engine, acct)] == ["failed"]
    assert client.post(url, data={"answer": "confirm"}).status_code == 200
    assert balance(sqlite_engine, acct) == 50


def test_another_site_cannot_answer_and_bad_answers_change_nothing(client, sqlite_engine):
    acct, url = waiting_pack(sqlite_engine)
    cross = client.post(url, data={"answer": "confirm"}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert client.post(url, data={"answer": "maybe"}).status_code == 400
    assert client.get("/api/payments/confirm?token=not-a-real-token-at-all").status_code == 404
    missing = client.post(
        "/api/payments/confirm?token=not-a-real-token-at-all", data={"answer": "confirm"}
    )
    assert missing.status_code == 404
    assert balance(sqlite_engine, acct) == 50 and invoices_of(sqlite_engine, acct) == []
