"""Credit packs in Chromium: a Free user opens Buy credits from the header,
pays a pack with a test card, and sees the new balance in the header and the
Credit pack row on Usage; a declined card shows its reason and adds nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import PASSWORD, balance, fill_card, invoices, log_in, new_user

pytestmark = pytest.mark.browser


def test_a_free_user_buys_a_pack_and_sees_the_balance_and_the_usage_row(page, app_engine):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    expect(page.get_by_test_id("balance")).to_have_text("50 credits")
    page.get_by_test_id("buy-credits-button").click()
    expect(page).to_have_url(re.compile(r"/credits/?$"))
    expect(page.get_by_test_id("pack-rules")).to_contain_text("expire 12 months after purchase")
    page.get_by_test_id("buy-pack-credits_500").click()
    expect(page.get_by_test_id("pack-charge")).to_have_text("$6.00")
    expect(page.get_by_test_id("pack-credits")).to_have_text("+500")
    fill_card(page, "4242424242424242")
    page.get_by_test_id("card-submit").click()
    expect(page.get_by_test_id("pack-done")).to_contain_text("500 credits were added")
    expect(page.get_by_test_id("balance")).to_have_text("550 credits")
    assert balance(app_engine, email) == 550
    assert [(i.kind, i.status, i.amount_cents) for i in invoices(app_engine, email)] == [
        ("pack", "paid", 600)
    ]

    page.get_by_test_id("pack-usage-link").click()
    first = page.get_by_test_id("usage-row").first
    expect(first.get_by_test_id("usage-action")).to_have_text("Credit pack")
    expect(first.get_by_test_id("usage-amount")).to_have_text("+500")
    expect(first.get_by_test_id("usage-balance")).to_have_text("550")


def test_a_declined_card_shows_the_reason_and_adds_nothing(page, app_engine):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    page.goto("/credits")
    page.get_by_test_id("buy-pack-credits_2000").click()
    expect(page.get_by_test_id("pack-charge")).to_have_text("$20.00")
    fill_card(page, "4000000000000002")
    page.get_by_test_id("card-submit").click()
    expect(page.get_by_test_id("card-form-error")).to_have_text("Your card was declined.")
    expect(page.get_by_test_id("balance")).to_have_text("50 credits")
    assert [(i.kind, i.status) for i in invoices(app_engine, email)] == [("pack", "failed")]


def test_plans_page_offers_packs(page, app_engine):
    email = new_user(app_engine, "starter")
    log_in(page, email, PASSWORD)
    page.goto("/plans")
    page.get_by_test_id("plans-buy-credits").click()
    expect(page.get_by_test_id("pack-credits_6000")).to_be_visible()
