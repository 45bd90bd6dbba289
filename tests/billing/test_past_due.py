"""Past due done right, on SQLite and PostgreSQL: what the
banner says, "Pay now" after replacing the card renews exactly as an on-time
renewal, a declined Pay now leaves the retry schedule alone, and packs are
never touched by dunning or the return to Free."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.factories import buy
from tests.support.subscriptions import (
    FAILS_ON_CHARGE,
    VISA,
    at,
    balance,
    entries,
    grants_of,
    invoices_of,
    outbox_of,
    save_card,
    sign_up,
    subscribe,
    subscription_of,
)
from workroom_app.billing import subscriptions
from workroom_app.db import read_session, write_session
from workroom_app.models import ActionType, GrantSource

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DUE = datetime(2026, 4, 10, 9, 30, tzinfo=UTC)


def past_due_account(engine, *, with_pack=False):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        if with_pack:
            buy(engine, acct, card=None)
        save_card(engine, acct, FAILS_ON_CHARGE)
    with at(DUE):
        subscriptions.renew_due(engine)
    assert subscription_of(engine, acct).status == "past_due"
    return acct


def pay_now(engine, acct):
    with write_session(engine) as s:
        return subscriptions.pay_now(s, acct)


def test_the_past_due_notice_says_what_failed_when_we_retry_and_how_to_fix_it(engine):
    acct = past_due_account(engine)
    with read_session(engine) as s:
        notice = subscriptions.past_due(s, acct)
    assert notice.message() == (
        "Your Starter renewal payment of $10.00 failed: Your card was declined. "
        "We'll try again on Apr 11, 2026. Replace your card and pay now on the Subscription page "
        "to keep your plan."
    )


def test_pay_now_after_replacing_the_card_renews_exactly_as_on_time(engine):
    on_time = sign_up(engine)
    with at(T0):
        subscribe(engine, on_time, "starter")
    with at(DUE):
        subscriptions.renew_due(engine)
    acct = past_due_account(engine)
    with at(datetime(2026, 4, 10, 15, 0, tzinfo=UTC)):
        save_card(engine, acct, VISA)
        out = pay_now(engine, acct)
    assert out.ok and out.credits_added == 800
    sub, ref = subscription_of(engine, acct), subscription_of(engine, on_time)
    assert (sub.status, sub.failed_attempts, sub.next_retry_at) == ("active", 0, None)
    assert (sub.current_period_start, sub.current_period_end) == (
        ref.current_period_start,
        ref.current_period_end,
    )
    # The same rows as the on-time renewal: Expiry of the old period, then Monthly credits.
    assert (
        entries(engine, acct)[-2:]
        == entries(engine, on_time)[-2:]
        == [(ActionType.EXPIRY.value, -800), (ActionType.MONTHLY_CREDITS.value, 800)]
    )
    paid = [i for i in invoices_of(engine, acct) if i.status == "paid"]
    assert [(i.kind, i.amount_cents, i.period_start, i.period_end) for i in paid][-1] == (
        "renewal",
        1000,
        ref.current_period_start,
        ref.current_period_end,
    )
    assert outbox_of(engine, acct)[-1].invoice_id == paid[-1].id  # the receipt
    with read_session(engine) as s:
        assert subscriptions.past_due(s, acct) is None


def test_pay_now_twice_charges_once(engine):
    acct = past_due_account(engine)
    with at(datetime(2026, 4, 10, 15, 0, tzinfo=UTC)):
        save_card(engine, acct, VISA)
        assert pay_now(engine, acct).ok
        with pytest.raises(subscriptions.NoSubscription):
            pay_now(engine, acct)
    assert [i.status for i in invoices_of(engine, acct)].count(
        "paid"
    ) == 2  # activation + this renewal


def test_a_declined_pay_now_keeps_the_retry_schedule(engine):
    acct = past_due_account(engine)
    before = subscription_of(engine, acct)
    with at(datetime(2026, 4, 10, 15, 0, tzinfo=UTC)):
        for _ in range(5):  # trying again and again never ends the plan sooner
            out = pay_now(engine, acct)
            assert not out.ok and out.message == "Your card was declined."
    after = subscription_of(engine, acct)
    assert (after.status, after.failed_attempts, after.next_retry_at) == (
        "past_due",
        before.failed_attempts,
        before.next_retry_at,
    )


def test_pay_now_is_refused_when_nothing_is_due(engine):
    with at(T0):
        acct = sign_up(engine)
        with pytest.raises(subscriptions.NoSubscription):
            pay_now(engine, acct)
        subscribe(engine, acct, "starter")
        with pytest.raises(subscriptions.NoSubscription):
            pay_now(engine, acct)


def test_packs_are_never_touched_by_dunning_or_the_return_to_free(engine):
    acct = past_due_account(engine, with_pack=True)
    for day in (11, 13, 15, 16):
        with at(datetime(2026, 4, day, 9, 30, tzinfo=UTC)):
            subscriptions.renew_due(engine)
    assert subscription_of(engine, acct).status == "ended"
    [pack] = [g for g in grants_of(engine, acct) if g.source == GrantSource.PACK.value]
    assert (pack.amount_left, pack.closed_at) == (500, None)
    assert balance(engine, acct) == 50 + 500
