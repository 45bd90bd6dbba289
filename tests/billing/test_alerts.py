"""Alerts: one rule per test, on SQLite and PostgreSQL.
Low balance once per crossing (also under 32 concurrent debits), credits
expiring 7 days and 1 day before, payment failed, plan ended; each email
can be turned off while the in-app alert stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.concurrency import at_once, exceptions
from tests.support.factories import alerts_of, buy, spend
from tests.support.subscriptions import (
    FAILS_ON_CHARGE,
    at,
    balance,
    outbox_of,
    save_card,
    sign_up,
    subscribe,
)
from workroom_app.billing import alerts, subscriptions
from workroom_app.db import read_session, write_session
from workroom_app.models import AlertKind

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def alert_emails(engine, account_id) -> list:
    return [m for m in outbox_of(engine, account_id) if m.dedupe_key.startswith("alert:")]


def set_alerts(engine, account_id, threshold=None, **emails):
    flags = {
        "email_low_balance": True,
        "email_credits_expiring": True,
        "email_payment_failed": True,
        "email_plan_ended": True,
        **emails,
    }
    with write_session(engine) as s:
        return alerts.save_alert_settings(s, account_id, low_balance_threshold=threshold, **flags)


def test_low_balance_fires_once_per_crossing_at_10_percent_of_the_plan(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")  # 850: threshold 80
        spend(engine, acct, 770, "a")  # 80: not below
        assert alerts_of(engine, acct) == []
        spend(engine, acct, 1, "b")  # 79: crossed
        spend(engine, acct, 10, "c")  # 69: still below, no second alert
        [alert] = alerts_of(engine, acct, AlertKind.LOW_BALANCE)
        assert "Your balance is 79 credits, below your alert threshold of 80 credits." in alert.body
        assert alert.link == "/credits"
        [mail] = alert_emails(engine, acct)
        assert mail.subject == "Your balance is low" and "79 credits" in mail.body_text
        buy(engine, acct, card=None)  # 569: above again
        spend(engine, acct, 500, "d")  # 69: a new crossing
    assert len(alerts_of(engine, acct, AlertKind.LOW_BALANCE)) == 2


def test_free_has_no_default_threshold_but_a_chosen_one_works(engine):
    with at(T0):
        acct = sign_up(engine)
        spend(engine, acct, 45, "a")
        assert alerts_of(engine, acct) == []
        set_alerts(engine, acct, threshold="20")
        spend(engine, acct, 4, "b")  # 1 left, but it was already below 20 before: no crossing
        assert alerts_of(engine, acct) == []
        buy(engine, acct)  # 501
        spend(engine, acct, 490, "c")  # 11: crossed 20
    assert len(alerts_of(engine, acct, AlertKind.LOW_BALANCE)) == 1


def test_unsubscribing_stops_the_email_but_keeps_the_in_app_alert(engine):
    with at(T0):
        acct = sign_up(engine)
        set_alerts(engine, acct, threshold=40, email_low_balance=False)
        spend(engine, acct, 20, "a")
    assert len(alerts_of(engine, acct, AlertKind.LOW_BALANCE)) == 1
    assert alert_emails(engine, acct) == []


def test_32_concurrent_debits_crossing_the_threshold_alert_once(engine):
    with at(T0):
        acct = sign_up(engine)
        buy(engine, acct, "credits_2000")  # 2,050
        set_alerts(engine, acct, threshold=1000)
        errors = exceptions(at_once(32, lambda i: spend(engine, acct, 50, f"c{i}")))
    assert errors == []
    assert balance(engine, acct) == 2050 - 32 * 50
    assert len(alerts_of(engine, acct, AlertKind.LOW_BALANCE)) == 1
    assert len(alert_emails(engine, acct)) == 1


@pytest.mark.parametrize("bad", [-1, 1.5, "1.5", "-3", "ten", True, [5], 10**9, "9" * 20])
def test_a_bad_threshold_is_refused_and_changes_nothing(engine, bad):
    acct = sign_up(engine)
    with pytest.raises(alerts.AlertError):
        set_alerts(engine, acct, threshold=bad)
    with pytest.raises(alerts.AlertError):
        set_alerts(engine, acct, threshold=10, email_plan_ended="yes")
    with read_session(engine) as s:
        assert alerts.read_settings(s, acct) == alerts.DEFAULTS


def test_credits_expiring_are_announced_7_days_and_1_day_before_for_plans_and_packs(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")  # 800 expire on April 10
        buy(engine, acct, card=None)  # 500 expire on March 10, 2027
    for moment in (
        T0 + timedelta(days=20),
        T0 + timedelta(days=24),
        T0 + timedelta(days=24, hours=1),
    ):
        with at(moment), write_session(engine) as s:
            alerts.expiring_soon(s)
    titles = [a.title for a in alerts_of(engine, acct, AlertKind.CREDITS_EXPIRING)]
    assert titles == ["800 credits expire on Apr 10, 2026"]
    with at(datetime(2026, 4, 9, 10, 0, tzinfo=UTC)), write_session(engine) as s:
        alerts.expiring_soon(s)
        alerts.expiring_soon(s)
    assert len(alerts_of(engine, acct, AlertKind.CREDITS_EXPIRING)) == 2  # the 1-day notice, once
    # The pack's credits, a year later.
    with at(datetime(2027, 3, 4, 9, 0, tzinfo=UTC)), write_session(engine) as s:
        alerts.expiring_soon(s)
    assert (
        alerts_of(engine, acct, AlertKind.CREDITS_EXPIRING)[-1].title
        == "500 credits expire on Mar 10, 2027"
    )
    assert len(alert_emails(engine, acct)) == 3


def test_a_failed_renewal_alerts_with_the_reason_the_next_retry_and_the_card_link(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        save_card(engine, acct, FAILS_ON_CHARGE)
    with at(datetime(2026, 4, 10, 9, 30, tzinfo=UTC)):
        subscriptions.renew_due(engine)
    [alert] = alerts_of(engine, acct, AlertKind.PAYMENT_FAILED)
    assert alert.title == "Your payment failed" and alert.link == "/subscription"
    assert "Starter renewal payment of $10.00 failed" in alert.body
    assert "We'll try again on Apr 11, 2026." in alert.body
    assert any(m.subject == "Your payment failed" for m in alert_emails(engine, acct))


def test_the_plan_ending_alerts_and_packs_stay(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        buy(engine, acct, card=None)
        save_card(engine, acct, FAILS_ON_CHARGE)
    for day in (10, 11, 13, 15, 16):
        with at(datetime(2026, 4, day, 9, 30, tzinfo=UTC)):
            subscriptions.renew_due(engine)
    with read_session(engine) as s:
        assert subscriptions.summary(s, acct).status == "free"
    [ended] = alerts_of(engine, acct, AlertKind.PLAN_ENDED)
    assert "back on Free" in ended.body and "Credits from packs stay" in ended.body
    assert balance(engine, acct) == 50 + 500


def test_the_debit_path_writes_nothing_when_no_threshold_is_crossed(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "pro")
        for i in range(20):
            spend(engine, acct, 1, f"d{i}")
    assert alerts_of(engine, acct) == []
