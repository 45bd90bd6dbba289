"""3-D Secure in Chromium with the local gateway: a pack paid with 4000 0027 6000 3184
goes to the confirmation step; Confirm adds the credits once, and the balance and the
Credit pack row on Usage appear once (a second Confirm changes nothing)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import PASSWORD, balance, fill_card, invoices, log_in, new_user

pytestmark = pytest.mark.browser


def test_a_pack_that_needs_confirmation_is_credited_once_after_confirm(page, app_engine):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    page.goto("/credits")
    page.get_by_test_id("buy-pack-credits_500").click()
    expect(page.get_by_test_id("pack-charge")).to_have_text("$6.00")
    fill_card(page, "4000002760003184")
    page.get_by_test_id("card-submit").click()
    # The bank's page (the local stand-in): nothing is charged yet.
    expect(page).to_have_url(re.compile(r"/api/payments/confirm\?token=[\w-]+$"))
    confirm_url = page.url
    expect(page.get_by_test_id("confirm-amount")).to_have_text("$6.00")
    assert balance(app_engine, email) == 50 and invoices(app_engine, email) == []
    # Back in the app meanwhile, every page asks for it.
    page.goto("/generate")
    expect(page.get_by_test_id("confirm-payment-banner")).to_contain_text(
        "confirm your payment of $6.00"
    )
    page.get_by_test_id("confirm-payment-link").click()
    expect(page).to_have_url(confirm_url)
    page.get_by_test_id("confirm-payment").click()
    expect(page.get_by_test_id("confirm-result")).to_contain_text("500 credits were added")
    # Confirm again from the browser's history: nothing more.
    page.goto(confirm_url)
    expect(page.locator("main")).to_contain_text("already confirmed")
    page.get_by_test_id("confirm-continue").click()
    expect(page).to_have_url(re.compile(r"/credits/?$"))
    expect(page.get_by_test_id("balance")).to_have_text("550 credits")
    expect(page.get_by_test_id("confirm-payment-banner")).to_have_count(0)
    assert balance(app_engine, email) == 550
    assert [(i.kind, i.status, i.amount_cents) for i in invoices(app_engine, email)] == [
        ("pack", "paid", 600)
    ]
    page.goto("/usage")
    rows = page.get_by_test_id("usage-row")
    expect(rows.first.get_by_test_id("usage-action")).to_have_text("Credit pack")
    expect(rows.first.get_by_test_id("usage-amount")).to_have_text("+500")
    expect(page.get_by_test_id("usage-action").filter(has_text="Credit pack")).to_have_count(1)
