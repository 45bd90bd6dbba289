"""Alert settings, auto top-up settings, the header popover and Pay now through
Reflex's real event path: forged values get a clear message and change
nothing; a toast shows once; a past-due account pays now and the banner goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.pages import (
    BOTH_ENGINES,
    NOW,
    PlansTab,
    balance,
    make_user,
    runner,
    subscribe,
)
from workroom_app.billing import accounts, alerts, clock, ledger, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.state.alert_settings import AlertSettingsState
from workroom_app.state.alerts import AlertsState
from workroom_app.state.subscription import SubscriptionState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(PlansTab, now=NOW)

GOOD_ALERTS = {"low_balance_threshold": "250", "email_low_balance": "on", "email_plan_ended": "on"}
GOOD_TOP_UP = {
    "auto_top_up": "on",
    "top_up_threshold": "100",
    "top_up_pack": "credits_2000",
    "top_up_monthly_cap": "3",
}


def stored(engine, account_id):
    with read_session(engine) as s:
        return alerts.read_settings(s, account_id)


@BOTH_ENGINES
def test_alert_and_top_up_settings_are_saved_from_the_forms(app_db):
    account_id, token = make_user(app_db, "set@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", AlertSettingsState)
        st = await tab.state(AlertSettingsState)
        assert st.default_threshold_text == "80" and st.threshold_text == ""
        assert [p.key for p in st.pack_options] == ["credits_500", "credits_2000", "credits_6000"]
        # Prices in the app's one money format, as on Buy credits.
        assert [p.label for p in st.pack_options] == [
            "500 credits ($6.00)",
            "2,000 credits ($20.00)",
            "6,000 credits ($50.00)",
        ]
        await tab.send(AlertSettingsState, "save_alerts", form_data=dict(GOOD_ALERTS))
        await tab.send(AlertSettingsState, "save_top_up", form_data=dict(GOOD_TOP_UP))
        st = await tab.state(AlertSettingsState)
        assert st.alerts_error == "" and st.top_up_error == ""
        assert st.threshold_text == "250" and st.auto_on and st.top_up_pack == "credits_2000"

    run(scenario)
    s = stored(app_db, account_id)
    assert (
        s.low_balance_threshold,
        s.email_low_balance,
        s.email_credits_expiring,
        s.email_payment_failed,
        s.email_plan_ended,
    ) == (250, True, False, False, True)
    assert (s.auto_top_up, s.top_up_threshold, s.top_up_pack, s.top_up_monthly_cap) == (
        True,
        100,
        "credits_2000",
        3,
    )


@pytest.mark.parametrize(
    ("handler", "form"),
    [
        ("save_alerts", {**GOOD_ALERTS, "low_balance_threshold": "-5"}),
        ("save_alerts", {**GOOD_ALERTS, "low_balance_threshold": "2.5"}),
        ("save_alerts", {**GOOD_ALERTS, "low_balance_threshold": ["1"]}),
        ("save_alerts", {**GOOD_ALERTS, "low_balance_threshold": "1" * 40}),
        ("save_alerts", "250"),
        ("save_alerts", None),
        ("save_top_up", {**GOOD_TOP_UP, "top_up_pack": "credits_999"}),
        ("save_top_up", {**GOOD_TOP_UP, "top_up_threshold": "0"}),
        ("save_top_up", {**GOOD_TOP_UP, "top_up_threshold": "-100"}),
        ("save_top_up", {**GOOD_TOP_UP, "top_up_monthly_cap": "0.5"}),
        ("save_top_up", {**GOOD_TOP_UP, "top_up_monthly_cap": "1000"}),
        ("save_top_up", {**GOOD_TOP_UP, "top_up_pack": {"key": "credits_500"}}),
        ("save_top_up", ["on"]),
    ],
)
def test_forged_settings_get_a_clear_message_and_change_nothing(app_db, handler, form):
    account_id, token = make_user(app_db, "forge@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", AlertSettingsState)
        await tab.send(AlertSettingsState, handler, form_data=form)
        st = await tab.state(AlertSettingsState)
        assert st.alerts_error if handler == "save_alerts" else st.top_up_error

    run(scenario)
    assert stored(app_db, account_id) == alerts.DEFAULTS


def test_auto_top_up_needs_a_card_on_file(app_db):
    account_id, token = make_user(app_db, "nocard@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", AlertSettingsState)
        await tab.send(AlertSettingsState, "save_top_up", form_data=dict(GOOD_TOP_UP))
        assert "Add a card first" in (await tab.state(AlertSettingsState)).top_up_error

    run(scenario)
    assert stored(app_db, account_id) == alerts.DEFAULTS


@BOTH_ENGINES
def test_the_popover_shows_the_balance_by_source_and_toasts_an_alert_once(app_db):
    account_id, token = make_user(app_db, "pop@example.com")
    subscribe(app_db, account_id, "starter")  # 50 trial + 800 plan
    with clock.pinned(NOW), write_session(app_db) as s:
        ledger.debit(s, account_id, 780, feature="image", idempotency_key="big")  # crosses 80

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        sent = await tab.send(AlertsState, "refresh")
        assert "Your balance is low" in sent
        st = await tab.state(AlertsState)
        assert st.unread == 1 and st.alerts[0].title == "Your balance is low"
        assert {r.testid: r.credits_text for r in st.sources} == {
            "balance-part-plan": "20",
            "balance-part-packs": "0",
            "balance-part-trial": "50",
        }
        assert st.expiring_text == "20 credits expire on Dec 24, 2026"
        assert "Your balance is low" not in await tab.send(AlertsState, "refresh")  # once
        await tab.send(AlertsState, "mark_all_read")
        assert (await tab.state(AlertsState)).unread == 0

    run(scenario)


@BOTH_ENGINES
def test_a_past_due_account_sees_the_banner_replaces_the_card_pays_now_and_it_goes(app_db):
    account_id, token = make_user(app_db, "due@example.com")
    subscribe(app_db, account_id, "starter")
    with clock.pinned(NOW), write_session(app_db) as s:
        subscriptions.save_card(s, account_id, CardForm("4000000000000341", 12, 2030, "123", "A"))
    due = datetime(2026, 12, 24, 16, 0, tzinfo=UTC)
    with clock.pinned(due):
        subscriptions.renew_due(app_db)
        with write_session(app_db) as s:  # the first login has lapsed (30 days)
            token = accounts.create_login(s, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.send(AlertsState, "refresh")
        assert (
            "Your Starter renewal payment of $10.00 failed"
            in (await tab.state(AlertsState)).past_due_text
        )
        await tab.open("/subscription", SubscriptionState)
        st = await tab.state(SubscriptionState)
        assert (st.renewal_text, st.renewal_amount, st.plan_status) == (
            "Past due",
            "$10.00 failed",
            "past_due",
        )
        assert not st.auto_renew
        await tab.send(
            SubscriptionState,
            "submit_card",
            form_data={
                "number": "4242 4242 4242 4242",
                "expiry": "12/30",
                "cvc": "123",
                "name": "A",
            },
        )
        sent = await tab.send(SubscriptionState, "pay_now")
        assert "Renewed Starter" in sent
        assert (await tab.state(AlertsState)).past_due_text == ""
        st = await tab.state(SubscriptionState)
        assert st.plan_status == "active" and st.renewal_text == "Jan 24, 2027"
        # A second click has nothing to pay.
        assert "no failed payment" in await tab.send(SubscriptionState, "pay_now")

    runner(PlansTab, now=datetime(2026, 12, 25, 10, 0, tzinfo=UTC))(scenario)
    assert balance(app_db, account_id) == 50 + 800
