"""GET /api/invoices/{id}/pdf through Starlette: only the owner (and staff)
get the PDF; anyone else, signed in or not, gets the same 404 as for an id
that does not exist."""

from __future__ import annotations

import io

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.factories import NOW, make_user
from workroom_app.billing import accounts, clock, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.http import invoice_routes
from workroom_app.http.auth_routes import AUTH_ROUTES
from workroom_app.models import Account, Invoice, Role
from workroom_app.security.session_cookie import COOKIE_NAME

pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def client(app_db):
    with clock.pinned(NOW):
        yield TestClient(Starlette(routes=invoice_routes.INVOICE_ROUTES))


def paid_invoice(engine, account_id: int, plan: str = "pro") -> Invoice:
    with clock.pinned(NOW), write_session(engine) as s:
        out = subscriptions.subscribe(
            s, account_id, plan, card=CardForm("378282246310005", 4, 2031, "1234", "A")
        )
        assert out.ok
    with read_session(engine) as s:
        return s.exec(select(Invoice).where(Invoice.account_id == account_id)).one()


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def get(client: TestClient, invoice_id, token: str | None):  # noqa: ANN001
    client.cookies.clear()
    if token is not None:
        client.cookies.set(COOKIE_NAME, token)
    return client.get(f"/api/invoices/{invoice_id}/pdf")


def test_the_pdf_route_reads_the_cookie_the_login_route_sets(app_db):
    # Signed in the way a browser is (the ticket redeemed over HTTP), with nothing but the
    # cookie that response set, the owner gets the PDF.
    owner, _ = make_user(app_db, "owner@example.com")
    invoice = paid_invoice(app_db, owner)
    with clock.pinned(NOW), write_session(app_db) as s:
        ticket = accounts.create_login_ticket(s, owner)
    with clock.pinned(NOW):
        browser = TestClient(Starlette(routes=[*AUTH_ROUTES, *invoice_routes.INVOICE_ROUTES]))
        url = f"/api/invoices/{invoice.id}/pdf"
        assert browser.get(url).status_code == 404
        signed_in = browser.post(
            "/api/auth/session", data={"ticket": ticket}, follow_redirects=False
        )
        assert signed_in.status_code == 303
        resp = browser.get(url)
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF")


def test_the_owner_gets_the_pdf_with_its_number_and_amount(app_db, client):
    owner, token = make_user(app_db, "owner@example.com")
    invoice = paid_invoice(app_db, owner)
    r = get(client, invoice.id, token)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in r.headers["content-disposition"]
    assert "no-store" in r.headers["cache-control"]
    assert r.content.startswith(b"%PDF")
    text = pdf_text(r.content)
    assert invoice.number in text and "$30.00" in text and "American Express ending in 0005" in text


def test_another_user_gets_404_like_a_missing_invoice(app_db, client):
    owner, _ = make_user(app_db, "owner@example.com")
    invoice = paid_invoice(app_db, owner)
    _, other = make_user(app_db, "other@example.com")
    theirs = get(client, invoice.id, other)
    missing = get(client, invoice.id + 1000, other)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    assert b"%PDF" not in theirs.content


def test_staff_may_download_any_invoice(app_db, client):
    owner, _ = make_user(app_db, "owner@example.com")
    invoice = paid_invoice(app_db, owner)
    _, staff = make_user(app_db, "staff@example.com", Role.STAFF)
    assert get(client, invoice.id, staff).status_code == 200


@pytest.mark.parametrize("token", [None, "", "not-a-real-token", "x" * 600])
def test_no_valid_session_gets_404(app_db, client, token):
    owner, _ = make_user(app_db, "owner@example.com")
    invoice = paid_invoice(app_db, owner)
    r = get(client, invoice.id, token)
    assert r.status_code == 404 and b"%PDF" not in r.content


def test_a_logged_out_token_gets_404(app_db, client):
    owner, token = make_user(app_db, "owner@example.com")
    invoice = paid_invoice(app_db, owner)
    with clock.pinned(NOW), write_session(app_db) as s:
        accounts.revoke_login(s, token)
    assert get(client, invoice.id, token).status_code == 404


@pytest.mark.parametrize(
    "guess", ["0", "-1", "abc", "1.0", "1%20OR%201=1", "99999999999999999999999", "2"]
)
def test_guessed_ids_get_404(app_db, client, guess):
    owner, token = make_user(app_db, "owner@example.com")
    paid_invoice(app_db, owner)
    assert get(client, guess, token).status_code == 404


def test_only_get_is_served(app_db, client):
    owner, token = make_user(app_db, "owner@example.com")
    invoice = paid_invoice(app_db, owner)
    client.cookies.set(COOKIE_NAME, token)
    assert client.post(f"/api/invoices/{invoice.id}/pdf").status_code == 405


def test_the_app_serves_the_route(app_db):
    import workroom_app.workroom_app as workroom

    paths = [getattr(r, "path", "") for r in workroom.API_ROUTES]
    assert invoice_routes.INVOICE_PDF_ROUTE in paths
    with read_session(app_db) as s:
        assert s.exec(select(Account)).all() == []


def test_a_declined_attempt_has_no_pdf_even_for_its_owner(app_db, client):
    """A failed payment is listed on Payment History but is not an invoice:
    no number, and the PDF route answers it like a missing invoice."""
    owner, token = make_user(app_db, "declined@example.com")
    with clock.pinned(NOW), write_session(app_db) as s:
        out = subscriptions.subscribe(
            s, owner, "pro", card=CardForm("4000000000000002", 4, 2031, "123", "A")
        )
        assert not out.ok and out.invoice_number is None
    with read_session(app_db) as s:
        failed = s.exec(select(Invoice).where(Invoice.account_id == owner)).one()
    assert (failed.status, failed.number) == ("failed", None)
    r = get(client, failed.id, token)
    assert r.status_code == 404 and r.text == invoice_routes.NOT_FOUND
    # The next paid invoice is the account's first number.
    assert paid_invoice_after_decline(app_db, owner).number == f"WR-{owner}-0001"


def test_the_pdf_shows_dates_in_the_accounts_time_zone(app_db, client):
    owner, token = make_user(app_db, "tz-pdf@example.com")
    with write_session(app_db) as s:
        s.get(Account, owner).timezone = "Pacific/Auckland"
    invoice = paid_invoice(app_db, owner)  # Nov 24 15:00 UTC is Nov 25 in Auckland
    text = pdf_text(get(client, invoice.id, token).content)
    assert "Nov 25, 2026" in text and "Dates in Pacific/Auckland" in text


def paid_invoice_after_decline(engine, account_id: int) -> Invoice:
    with clock.pinned(NOW), write_session(engine) as s:
        assert subscriptions.subscribe(
            s, account_id, "pro", card=CardForm("4242424242424242", 4, 2031, "123", "A")
        ).ok
    with read_session(engine) as s:
        return s.exec(
            select(Invoice).where(Invoice.account_id == account_id, Invoice.status == "paid")
        ).one()
