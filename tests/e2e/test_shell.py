"""The app shell in Chromium: log-in, the balance in the header, Upgrade, the
guard for signed-out visitors, sign-up with the trial, wrong password."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.browser import confirmation_link, log_in
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/workroom-shell.png"


def _balance_of(engine, email: str) -> int:
    with read_session(engine) as s:
        return ledger.balance(s, accounts.find_account(s, email).id)


def test_demo_user_sees_their_balance_in_the_header(page, app_engine):
    log_in(page, "demo@workroom.test", "workroom-demo")
    expected = _balance_of(app_engine, "demo@workroom.test")
    balance = page.get_by_test_id("balance")
    expect(balance).to_have_text(f"{expected:,} credits")
    # Top right: the balance sits in the right half of the header.
    box = balance.bounding_box()
    header = page.get_by_test_id("app-header").bounding_box()
    assert box["x"] > header["x"] + header["width"] / 2
    assert box["y"] < header["y"] + header["height"]
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_upgrade_opens_the_plans_page(page):
    log_in(page, "free@workroom.test", "workroom-demo")
    page.get_by_test_id("upgrade-button").click()
    expect(page).to_have_url(re.compile(r"/plans/?$"))


def test_signed_out_visitor_lands_on_login(page):
    for path in ["/home", "/", "/plans", "/usage"]:
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/login/?$"))
        expect(page.get_by_test_id("balance")).to_have_count(0)


def test_sign_up_shows_the_trial_credits_once_the_email_is_confirmed(page, app_engine):
    """The trial follows the emailed confirmation link, not the sign-up itself."""
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/signup")
    page.fill("#display_name", "New Person")
    page.fill("#email", email)
    page.fill("#password", "a-long-password")
    page.fill("#confirm_password", "a-long-password")
    page.press("#confirm_password", "Enter")
    expect(page).to_have_url(re.compile(r"/generate/?$"))
    # The trial waits for the email address: the page says so, and where the link went.
    expect(page.get_by_test_id("balance")).to_have_text("0 credits")
    banner = page.get_by_test_id("confirm-email-banner")
    expect(banner).to_contain_text(email)
    expect(banner).to_contain_text("50 free trial credits")
    assert _balance_of(app_engine, email) == 0

    # The link from the email, opened in another tab: this one follows without a reload.
    other = page.context.new_page()
    other.goto(confirmation_link(app_engine, email))
    expect(other.get_by_role("heading")).to_have_text("Email address confirmed")
    expect(page.get_by_test_id("balance")).to_have_text("50 credits")
    expect(banner).to_have_count(0)
    assert _balance_of(app_engine, email) == 50


def test_wrong_password_shows_the_message(page):
    page.goto("/login")
    page.fill("#email", "free@workroom.test")
    page.fill("#password", "not-the-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("auth-error")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(re.compile(r"/login/?$"))


def test_log_out_ends_the_session(page):
    log_in(page, "free@workroom.test", "workroom-demo")
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login/?$"))
    page.goto("/home")
    expect(page).to_have_url(re.compile(r"/login/?$"))


def test_shell_fits_a_phone(browser, base_url):
    context = browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        log_in(page, "free@workroom.test", "workroom-demo")
        expect(page.get_by_test_id("balance")).to_be_visible()
        expect(page.get_by_test_id("upgrade-button")).to_be_visible()
        expect(page.get_by_test_id("nav-home")).to_be_hidden()  # the sidebar folds away...
        page.get_by_test_id("mobile-menu").click()  # ...into a menu
        expect(page.get_by_role("menuitem", name="Home")).to_be_visible()
        # Nothing sticks out sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path="/tmp/workroom-shell-phone.png")
    finally:
        context.close()


def test_log_out_sends_the_other_open_tab_to_login(page):
    log_in(page, "free@workroom.test", "workroom-demo")
    other = page.context.new_page()
    other.goto("/usage")
    expect(other.get_by_test_id("balance")).to_be_visible()
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login/?$"))
    # The other tab sits idle (no event of its own): it is told, and leaves at once.
    expect(other).to_have_url(re.compile(r"/login/?$"), timeout=5_000)
    expect(other.get_by_test_id("balance")).to_have_count(0)


def test_log_out_and_log_in_again_in_the_same_tab(page):
    """The tab keeps its server state across the log-in's page load: the form must not stay
    'submitting' from the last log-in (it ignored every later one)."""
    log_in(page, "free@workroom.test", "workroom-demo")
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login/?$"))
    log_in(page, "free@workroom.test", "workroom-demo")
    expect(page).to_have_url(re.compile(r"/generate/?$"))
