"""Security in Chromium against the served app: the login cookie's flags as the browser holds
it, a copied cookie refused once its owner logs out, and the served app's HTTP body cap."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.support.browser import log_in

pytestmark = pytest.mark.browser


def test_the_session_cookie_is_httponly_lax_and_invisible_to_script(page):
    log_in(page, "free@workroom.test", "workroom-demo")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "workroom_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # the public URL is http here; https sets Secure
    assert cookie["path"] == "/"
    assert "workroom_session" not in page.evaluate("document.cookie")
    # Nothing of the token in the page's storage either.
    storage = page.evaluate(
        "JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})"
    )
    assert cookie["value"] not in storage


def test_a_copied_cookie_stops_working_when_its_owner_logs_out(browser, base_url):
    victim = browser.new_context(base_url=base_url)
    thief = browser.new_context(base_url=base_url)
    try:
        v = victim.new_page()
        log_in(v, "free@workroom.test", "workroom-demo")
        stolen = [c for c in victim.cookies() if c["name"] == "workroom_session"]
        thief.add_cookies(stolen)
        t = thief.new_page()
        t.goto("/usage")
        expect(t.get_by_test_id("balance")).to_be_visible()  # the stolen cookie works for now
        v.get_by_test_id("user-menu").click()
        v.get_by_test_id("logout").click()
        expect(v).to_have_url(re.compile(r"/login/?$"))
        assert not [
            c for c in victim.cookies() if c["name"] == "workroom_session"
        ]  # cleared by the server
        # The thief's open page sends nothing: the live push signs it out and sends it to the
        # log-in page at once; coming back with the copied cookie gets nothing either.
        expect(t).to_have_url(re.compile(r"/login/?$"))
        expect(t.get_by_test_id("balance")).to_have_count(0)
        t.goto("/usage")
        expect(t).to_have_url(re.compile(r"/login/?$"))
        expect(t.get_by_test_id("balance")).to_have_count(0)
    finally:
        victim.close()
        thief.close()


def _raw_post(base_url: str, path: str, chunks, headers: dict[str, str]) -> int:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("POST", path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before we finished: what we want
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_served_webhook_refuses_a_chunked_body_past_1_mb(base_url):
    status = _raw_post(
        base_url,
        "/api/stripe/webhook",
        (b"x" * 65536 for _ in range(64)),
        {"Stripe-Signature": "t=1,v1=0", "Content-Type": "application/json"},
    )
    assert status == 413


def test_the_served_upload_endpoint_refuses_a_non_upload_handler(base_url):
    from workroom_app.state.session import SessionState

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    body = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\nabc\r\n--x--\r\n'
    conn.request(
        "POST",
        "/_upload",
        body=body,
        headers={
            "reflex-client-token": "t",
            "reflex-event-handler": f"{SessionState.get_full_name()}.logout",
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    assert conn.getresponse().status == 400
    conn.close()
