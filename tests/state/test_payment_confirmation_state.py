"""3-D Secure through Reflex's real event path: Pay with an authentication card sends
the browser to the confirmation step, every page then shows "Confirm this payment",
and the confirmation URL belongs to the account that paid."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.billing.test_payment_confirmation import ALWAYS
from tests.support.pages import (
    NOW,
    VISA,
    PlansTab,
    balance,
    invoices_of,
    make_user,
    runner,
)
from tests.support.subscriptions import save_card, subscribe
from workroom_app.billing import clock, payment_confirmation, subscriptions
from workroom_app.db import write_session
from workroom_app.state.alerts import AlertsState, read_popover
from workroom_app.state.credits import CreditsState
from workroom_app.state.subscription import SubscriptionState, read_overview

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(PlansTab, now=NOW)

AUTH_CARD = {**VISA, "number": "4000 0027 6000 3184"}


def test_pay_with_an_authentication_card_goes_to_the_confirmation_step(app_db):
    account_id, token = make_user(app_db, "3ds@example.com")
    seen: dict[str, str] = {}

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/credits", CreditsState)
        await tab.send(CreditsState, "choose", pack_key="credits_500")
        sent = await tab.send(CreditsState, "submit", form_data=AUTH_CARD)
        assert "window.location.assign" in sent and payment_confirmation.CONFIRM_PATH in sent
        await tab.send(AlertsState, "refresh")
        alerts = await tab.state(AlertsState)
        [item] = alerts.confirmations
        assert "confirm your payment of $6.00" in item.message
        assert item.url.startswith(payment_confirmation.CONFIRM_PATH) and item.url in sent
        seen["url"] = item.url

    run(scenario)
    assert invoices_of(app_db, account_id) == [] and balance(app_db, account_id) == 50
    # Another account's tab never sees it.
    other_id, other_token = make_user(app_db, "other@example.com")

    async def other(new_browser):
        tab = new_browser()
        await tab.sign_in(other_token)
        await tab.open("/credits", CreditsState)
        await tab.send(AlertsState, "refresh")
        assert (await tab.state(AlertsState)).confirmations == []

    run(other)
    with clock.pinned(NOW), write_session(app_db) as s:
        out = payment_confirmation.confirm(s, seen["url"].split("?token=", 1)[1], confirmed=True)
    assert out.ok and balance(app_db, account_id) == 550


def test_a_renewal_waiting_for_confirmation_changes_the_past_due_banner(app_db):
    account_id, _ = make_user(app_db, "renew3ds@example.com")
    with clock.pinned(NOW):
        subscribe(app_db, account_id, "starter")
        save_card(app_db, account_id, ALWAYS)
    with clock.pinned(NOW + timedelta(days=31)):
        subscriptions.renew_due(app_db)
        *_, past_due, confirm_url, others = read_popover(account_id)
        overview = read_overview(account_id)
    assert past_due.startswith("Your bank asks you to confirm your payment of $10.00")
    assert "failed" not in past_due and confirm_url.startswith(payment_confirmation.CONFIRM_PATH)
    assert others == []  # shown once, in the past-due banner
    assert (overview.renewal_text, overview.renewal_amount) == ("Past due", "$10.00 to confirm")


def test_pay_now_on_a_past_due_stripe_plan_pays_its_renewal(app_db, stripe_world):
    w = stripe_world
    account_id, token = make_user(app_db, "stripe-due@example.com")
    with clock.pinned(NOW):
        stripe_sub = w.checkout(account_id, "starter")
        w.deliver_pending()
        customer = w.standin.subscriptions[stripe_sub]["customer"]
        w.standin.set_card(customer, "declined")
        w.standin.renew(stripe_sub)
        w.deliver_pending()
        w.standin.set_card(customer, "authentication_required")  # the new card asks for 3-D Secure

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", SubscriptionState)
        assert (await tab.state(SubscriptionState)).plan_status == "past_due"
        sent = await tab.send(SubscriptionState, "pay_now")
        assert "window.location.assign" in sent and "https://invoice.stripe.com/" in sent

    run(scenario)
    invoice_id = next(i for i, v in w.standin.invoices.items() if v["status"] == "open")
    with clock.pinned(NOW):
        w.standin.authenticate_invoice(invoice_id)
        w.deliver_pending()
    assert w.subscription(account_id).status == "active"
