"""Plans and checkout in Chromium: subscribe with a Visa and an Amex test card,
a declined card, an upgrade whose preview equals the charge and the new
balance, a downgrade whose burn shows on Usage, cancel then resume."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from tests.support.browser import (
    PASSWORD,
    PHONE,
    account_id,
    balance,
    fill_card,
    invoices,
    log_in,
    new_user,
)
from workroom_app.billing import accounts, formatting, subscriptions
from workroom_app.db import read_session
from workroom_app.models import LedgerEntry, PaymentMethod, Subscription

pytestmark = pytest.mark.browser


def live(engine, email: str) -> Subscription | None:
    with read_session(engine) as s:
        return subscriptions.live_subscription(s, accounts.find_account(s, email).id)


def open_plans(page) -> None:  # noqa: ANN001
    page.goto("/plans")
    expect(page.get_by_test_id("plan-card-studio")).to_be_visible()


def subscribe_from_plans(page, plan: str, price: str) -> None:  # noqa: ANN001
    open_plans(page)
    page.get_by_test_id(f"plan-action-{plan}").click()
    expect(page.get_by_test_id("confirm-charge")).to_have_text(price)
    page.get_by_test_id("confirm-apply").click()
    expect(page).to_have_url(re.compile(rf"/checkout/?\?plan={plan}$"))
    expect(page.get_by_test_id("checkout-charge")).to_have_text(price)


def test_subscribe_with_a_visa_test_card(page, app_engine):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    subscribe_from_plans(page, "starter", "$10.00")
    fill_card(page, "4242424242424242")
    expect(page.get_by_test_id("card-number")).to_have_value("4242 4242 4242 4242")
    expect(page.get_by_test_id("card-brand")).to_have_text("Visa")
    expect(page.get_by_test_id("card-expiry")).to_have_value("12/30")
    page.screenshot(path="/tmp/workroom-checkout.png", full_page=True)
    page.get_by_test_id("card-submit").click()
    expect(page).to_have_url(re.compile(r"/subscription/?$"))
    expect(page.get_by_test_id("balance")).to_have_text("850 credits")
    expect(page.get_by_test_id("sub-plan")).to_have_text("Starter")
    row = page.get_by_test_id("payment-row").first
    expect(row.get_by_test_id("payment-amount")).to_have_text("$10.00")
    expect(row.get_by_test_id("payment-card")).to_have_text("Visa •••• 4242")
    expect(row.get_by_test_id("payment-status")).to_have_text("Paid")
    assert live(app_engine, email).plan_key == "starter"
    assert [(i.status, i.amount_cents, i.card_brand) for i in invoices(app_engine, email)] == [
        ("paid", 1000, "visa")
    ]
    assert balance(app_engine, email) == 850


def test_subscribe_with_an_amex_test_card(page, app_engine):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    subscribe_from_plans(page, "pro", "$30.00")
    fill_card(page, "378282246310005", cvc="1234")
    expect(page.get_by_test_id("card-number")).to_have_value("3782 822463 10005")
    expect(page.get_by_test_id("card-brand")).to_have_text("American Express")
    page.get_by_test_id("card-submit").click()
    expect(page).to_have_url(re.compile(r"/subscription/?$"))
    expect(page.get_by_test_id("balance")).to_have_text("3,050 credits")
    expect(page.get_by_test_id("sub-card")).to_contain_text("American Express ending in 0005")
    with read_session(app_engine) as s:
        card = s.exec(
            select(PaymentMethod).where(PaymentMethod.account_id == account_id(app_engine, email))
        ).one()
    assert (card.brand, card.last4) == ("amex", "0005")
    assert live(app_engine, email).plan_key == "pro"


def test_a_declined_card_shows_the_reason_and_changes_nothing(page, app_engine):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    subscribe_from_plans(page, "starter", "$10.00")
    fill_card(page, "4000000000000002")
    page.get_by_test_id("card-submit").click()
    expect(page.get_by_test_id("card-form-error")).to_have_text("Your card was declined.")
    page.screenshot(path="/tmp/workroom-checkout-declined.png", full_page=True)
    expect(page).to_have_url(re.compile(r"/checkout"))
    expect(page.get_by_test_id("balance")).to_have_text("50 credits")
    assert live(app_engine, email) is None and balance(app_engine, email) == 50
    with read_session(app_engine) as s:
        rows = s.exec(
            select(LedgerEntry).where(LedgerEntry.account_id == account_id(app_engine, email))
        ).all()
        cards = s.exec(
            select(PaymentMethod).where(PaymentMethod.account_id == account_id(app_engine, email))
        ).all()
    assert len(rows) == 1 and cards == []  # the trial grant only; no card kept
    assert [(i.status, i.failure_reason) for i in invoices(app_engine, email)] == [
        ("failed", "Your card was declined.")
    ]
    # The failed payment shows on Payment History, with the reason.
    page.goto("/subscription")
    row = page.get_by_test_id("payment-row").first
    expect(row.get_by_test_id("payment-status")).to_have_text("Failed")
    expect(row.get_by_test_id("payment-reason")).to_have_text("Your card was declined.")
    page.screenshot(path="/tmp/workroom-subscription-failed.png", full_page=True)


def test_upgrade_preview_equals_the_charge_and_the_new_balance(page, app_engine):
    email = new_user(app_engine, plan="starter")
    log_in(page, email, PASSWORD)
    open_plans(page)
    expect(
        page.get_by_test_id("plan-card-starter").get_by_test_id("plan-current-badge")
    ).to_have_text("Current plan")
    page.get_by_test_id("plan-action-pro").click()
    charge = page.get_by_test_id("confirm-charge").inner_text()
    after = page.get_by_test_id("confirm-balance-after").inner_text()
    added = page.get_by_test_id("confirm-credits-added").inner_text()
    assert (charge, added, after) == ("$20.00", "+2,200", "3,050")
    page.wait_for_timeout(400)  # let the dialog finish fading in
    page.screenshot(path="/tmp/workroom-plans-upgrade-dialog.png")
    page.get_by_test_id("confirm-apply").click()
    expect(page.get_by_test_id("confirm-dialog")).to_have_count(0)
    expect(page.get_by_test_id("balance")).to_have_text(f"{after} credits")
    expect(page.get_by_test_id("plan-card-pro").get_by_test_id("plan-current-badge")).to_have_text(
        "Current plan"
    )
    upgrade = [i for i in invoices(app_engine, email) if i.kind == "upgrade"]
    assert [(i.status, i.amount_cents) for i in upgrade] == [("paid", 2000)]
    assert balance(app_engine, email) == 3050


def test_downgrade_burn_shows_on_usage(page, app_engine):
    email = new_user(app_engine, plan="pro")
    log_in(page, email, PASSWORD)
    open_plans(page)
    page.get_by_test_id("plan-action-starter").click()
    expect(page.get_by_test_id("confirm-credits-burned")).to_have_text("\u22123,000")
    expect(page.get_by_test_id("confirm-charge")).to_have_text("$10.00")
    renewal = page.get_by_test_id("confirm-renewal-date").inner_text()
    page.get_by_test_id("confirm-apply").click()
    expect(
        page.get_by_test_id("plan-card-starter").get_by_test_id("plan-current-badge")
    ).to_have_text("Current plan")
    expect(page.get_by_test_id("balance")).to_have_text("850 credits")
    end = live(app_engine, email).current_period_end
    assert renewal == formatting.format_date(end)  # the one date format
    page.goto("/usage")
    burn = page.get_by_test_id("usage-row").filter(has_text="Plan change")
    expect(burn).to_have_count(1)
    expect(burn).to_contain_text("\u22123,000")


def test_cancel_then_resume(page, app_engine):
    email = new_user(app_engine, plan="starter")
    log_in(page, email, PASSWORD)
    open_plans(page)
    action = page.get_by_test_id("plan-action-starter")
    expect(action).to_have_text("Cancel auto-renewal")
    action.click()
    expect(page.get_by_test_id("confirm-charge")).to_have_text("$0.00")
    page.get_by_test_id("confirm-apply").click()
    expect(action).to_have_text("Resume")
    assert live(app_engine, email).cancel_at_period_end
    page.goto("/subscription")
    expect(page.get_by_test_id("sub-auto-renew")).to_contain_text("Off")
    expect(page.get_by_test_id("sub-renewal-date")).to_have_text("Does not renew")
    page.goto("/plans")
    page.get_by_test_id("plan-action-starter").click()
    expect(page.get_by_test_id("confirm-title")).to_have_text("Resume auto-renewal")
    page.get_by_test_id("confirm-apply").click()
    expect(page.get_by_test_id("plan-action-starter")).to_have_text("Cancel auto-renewal")
    assert not live(app_engine, email).cancel_at_period_end
    assert balance(app_engine, email) == 850


def test_the_dialog_works_from_the_keyboard(page, app_engine):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    open_plans(page)
    page.get_by_test_id("plan-action-starter").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("confirm-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("confirm-dialog")).to_have_count(0)
    assert invoices(app_engine, email) == []


def test_screenshots_desktop_and_phone(page, app_engine):
    email = new_user(app_engine, plan="pro")
    log_in(page, email, PASSWORD)
    open_plans(page)
    page.screenshot(path="/tmp/workroom-plans-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    open_plans(page)
    page.screenshot(path="/tmp/workroom-plans-phone.png", full_page=True)
    page.get_by_test_id("plan-action-studio").click()
    expect(page.get_by_test_id("confirm-apply")).to_be_visible()
    page.wait_for_timeout(400)
    page.screenshot(path="/tmp/workroom-plans-phone-dialog.png")
    box = page.get_by_test_id("confirm-dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.keyboard.press("Escape")
    page.goto("/checkout?plan=enterprise")
    expect(page.get_by_test_id("checkout-page-error")).to_contain_text("That plan does not exist")
