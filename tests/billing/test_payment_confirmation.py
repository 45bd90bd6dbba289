"""3-D Secure with the local gateway, on SQLite and PostgreSQL: a payment that needs
the card holder's confirmation is neither paid nor declined; confirmed, what it pays
for happens exactly once; failed or not confirmed in time, it follows the
failed-payment path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from tests.billing.test_packs import buy, pack_preview, spend
from tests.support.subscriptions import (
    FAILS_ON_CHARGE,
    VISA,
    at,
    balance,
    entries,
    invoices_of,
    outbox_of,
    preview,
    save_card,
    sign_up,
    subscribe,
    subscription_of,
)
from workroom_app.billing import (
    alerts,
    auto_top_up,
    ledger,
    payment_confirmation,
    subscriptions,
)
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.models import ActionType, LocalCharge, PaymentConfirmation

ALWAYS = CardForm("4000 0027 6000 3184", 12, 2030, "123", "Ann")
ON_SESSION = CardForm("4000002500003155", 12, 2030, "123", "Ann")
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DUE = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)


def token_of(outcome) -> str:
    assert outcome.requires_action and outcome.confirm_url.startswith(
        payment_confirmation.CONFIRM_PATH
    )
    return outcome.confirm_url.split("?token=", 1)[1]


def answer(engine, token, confirmed=True):
    with write_session(engine) as s:
        return payment_confirmation.confirm(s, token, confirmed=confirmed)


def rows(engine, acct):
    with read_session(engine) as s:
        return s.exec(
            select(PaymentConfirmation).where(PaymentConfirmation.account_id == acct)
        ).all()


def test_a_pack_with_an_authentication_card_waits_then_is_credited_once(engine):
    with at(T0):
        acct = sign_up(engine)
        out = buy(engine, acct, card=ALWAYS)
        assert not out.ok and out.requires_action
        assert "confirm this payment" in out.message
        # Nothing yet: no invoice, no credits, no card on file.
        assert invoices_of(engine, acct) == [] and balance(engine, acct) == 50
        # A double click on Pay while it waits: the same confirmation, no second charge.
        again = buy(engine, acct, card=ALWAYS, expected=pack_preview(engine, acct))
        assert again.requires_action and again.confirm_url == out.confirm_url
        with read_session(engine) as s:
            [view] = payment_confirmation.pending_for_account(s, acct)
        assert "Credit pack: 500 credits" in view.message() and "$6.00" in view.message()
        done = answer(engine, token_of(out))
        assert done.ok and done.credits_added == 500
        second = answer(engine, token_of(out))
        third = answer(engine, token_of(out), confirmed=False)
    assert second.replayed and third.replayed and third.ok
    assert balance(engine, acct) == 550
    assert [e for e in entries(engine, acct) if e[0] == ActionType.CREDIT_PACK.value] == [
        (ActionType.CREDIT_PACK.value, 500)
    ]
    [inv] = invoices_of(engine, acct)
    assert (inv.status, inv.amount_cents, inv.card_last4) == ("paid", 600, "3184")
    with read_session(engine) as s:
        assert subscriptions.default_card(s, acct).last4 == "3184"
        [charge] = s.exec(select(LocalCharge).where(LocalCharge.account_id == acct)).all()
        assert charge.ok
        assert payment_confirmation.pending_for_account(s, acct) == []
        assert check_ledger(s) == []


def test_failed_authentication_is_a_declined_payment_with_the_reason(engine):
    with at(T0):
        acct = sign_up(engine)
        out = buy(engine, acct, card=ALWAYS)
        failed = answer(engine, token_of(out), confirmed=False)
        late_confirm = answer(engine, token_of(out))
    assert not failed.ok and "unable to authenticate" in failed.message
    assert late_confirm.replayed and not late_confirm.ok
    [inv] = invoices_of(engine, acct)
    assert (inv.status, inv.number, inv.failure_code) == (
        "failed",
        None,
        payment_confirmation.AUTH_FAILED_CODE,
    )
    assert balance(engine, acct) == 50
    # The next purchase is a new payment (a new key), not a replay of the failed one.
    with at(T0):
        ok = buy(engine, acct, card=VISA)
    assert ok.ok and balance(engine, acct) == 550


def test_not_confirmed_within_24_hours_counts_as_failed(engine):
    with at(T0):
        acct = sign_up(engine)
        out = buy(engine, acct, card=ALWAYS)
    with at(T0 + timedelta(hours=23, minutes=59)):
        assert payment_confirmation.expire_due(engine) == 0
    with at(T0 + timedelta(hours=24)):
        assert payment_confirmation.expire_due(engine) == 1
        late = answer(engine, token_of(out))
    assert not late.ok
    [inv] = invoices_of(engine, acct)
    assert inv.status == "failed" and inv.failure_code == payment_confirmation.EXPIRED_CODE
    assert [r.status for r in rows(engine, acct)] == ["expired"]
    assert balance(engine, acct) == 50


def test_the_on_session_card_asks_on_the_page_but_not_for_renewals(engine):
    with at(T0):
        acct = sign_up(engine)
        out = subscribe(engine, acct, "starter", card=ON_SESSION)
        assert out.requires_action and subscription_of(engine, acct) is None
        done = answer(engine, token_of(out))
    assert done.ok and subscription_of(engine, acct).plan_key == "starter"
    assert subscription_of(engine, acct).current_period_start == T0
    with at(DUE):
        subscriptions.renew_due(engine)
    sub = subscription_of(engine, acct)
    assert sub.status == "active" and sub.current_period_start == DUE


def test_an_upgrade_waits_for_confirmation_and_applies_once(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        save_card(engine, acct, ALWAYS)
        p = preview(engine, acct, "pro")
        with write_session(engine) as s:
            out = subscriptions.change_plan(s, acct, "pro", expected_preview=p)
        assert out.requires_action and subscription_of(engine, acct).plan_key == "starter"
        with write_session(engine) as s:  # the same confirmation again: still one
            again = subscriptions.change_plan(s, acct, "pro", expected_preview=p)
        assert again.confirm_url == out.confirm_url
        done = answer(engine, token_of(out))
        answer(engine, token_of(out))
    assert done.ok and subscription_of(engine, acct).plan_key == "pro"
    upgrades = [i for i in invoices_of(engine, acct) if i.kind == "upgrade"]
    assert [(i.status, i.amount_cents) for i in upgrades] == [("paid", p.charge_cents)]
    assert [e for e in entries(engine, acct) if e[0] == ActionType.PLAN_CHANGE.value] == [
        (ActionType.PLAN_CHANGE.value, p.credits_added)
    ]


def test_a_renewal_that_needs_confirmation_is_past_due_then_renews_on_confirm(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        save_card(engine, acct, ALWAYS)
    with at(DUE):
        subscriptions.renew_due(engine)
        subscriptions.renew_due(engine)  # the scheduler again: nothing new
        sub = subscription_of(engine, acct)
        assert sub.status == "past_due" and sub.next_retry_at == DUE + timedelta(hours=24)
        [row] = rows(engine, acct)
        assert row.kind == "renewal"
        mails = [m for m in outbox_of(engine, acct) if m.subject == "Confirm your renewal payment"]
        assert len(mails) == 1 and "Confirm this payment" in mails[0].body_text
        # Pay now while it waits: the same confirmation, no second charge.
        with write_session(engine) as s:
            pay = subscriptions.pay_now(s, acct)
        assert pay.requires_action and pay.confirm_url.endswith(row.token)
    with at(DUE + timedelta(hours=2)):
        done = answer(engine, row.token)
    assert done.ok
    sub = subscription_of(engine, acct)
    assert (sub.status, sub.current_period_start, sub.failed_attempts) == ("active", DUE, 0)
    renewals = [i for i in invoices_of(engine, acct) if i.kind == "renewal"]
    assert [i.status for i in renewals] == ["paid"]


def test_an_unconfirmed_renewal_follows_dunning(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        save_card(engine, acct, ALWAYS)
    with at(DUE):
        subscriptions.renew_due(engine)
    with at(DUE + timedelta(hours=24)):
        subscriptions.scheduled_tick(engine, send_receipts=False)
    sub = subscription_of(engine, acct)
    assert sub.status == "past_due" and sub.failed_attempts >= 1
    failed = [i for i in invoices_of(engine, acct) if i.kind == "renewal"]
    assert failed[0].status == "failed"
    assert failed[0].failure_code == payment_confirmation.EXPIRED_CODE
    assert any(m.subject == "Your payment failed" for m in outbox_of(engine, acct))


def test_auto_top_up_waits_for_confirmation_and_a_failed_one_turns_it_off(engine):
    with at(T0):
        acct = sign_up(engine)
        save_card(engine, acct, ALWAYS)
        with write_session(engine) as s:
            auto_top_up.save_settings(
                s, acct, enabled=True, threshold=40, pack_key="credits_500", monthly_cap=3
            )
        # The debit that crosses the threshold starts the top-up after it commits.
        entry = spend(engine, acct, 20, "spend-1")
        with write_session(engine) as s:  # another crossing while it waits: nothing new
            assert auto_top_up.top_up(s, acct, entry.entry_id + 1000) is None
        [row] = rows(engine, acct)
        assert row.kind == "auto_top_up"
        assert any(m.subject == "Confirm your auto top-up" for m in outbox_of(engine, acct))
        answer(engine, row.token, confirmed=False)
    with read_session(engine) as s:
        assert not alerts.read_settings(s, acct).auto_top_up
    assert any(m.subject == "Auto top-up is off" for m in outbox_of(engine, acct))
    [inv] = invoices_of(engine, acct)
    assert inv.status == "failed" and balance(engine, acct) == 30


def test_auto_top_up_confirmed_credits_once(engine):
    with at(T0):
        acct = sign_up(engine)
        save_card(engine, acct, ALWAYS)
        with write_session(engine) as s:
            auto_top_up.save_settings(
                s, acct, enabled=True, threshold=40, pack_key="credits_500", monthly_cap=1
            )
        entry = spend(engine, acct, 20, "spend-1")
        [row] = rows(engine, acct)
        answer(engine, row.token)
        answer(engine, row.token)
        with write_session(engine) as s:  # the cap (1) is reached by the confirmed one
            assert auto_top_up.top_up(s, acct, entry.entry_id + 1) is None
    assert balance(engine, acct) == 30 + 500
    with read_session(engine) as s:
        assert auto_top_up.top_ups_this_month(s, acct, T0) == 1
        assert ledger.balance(s, acct) == 530


def test_pay_now_that_needs_confirmation_leaves_the_retry_schedule_when_it_fails(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        save_card(engine, acct, FAILS_ON_CHARGE)
    with at(DUE):
        subscriptions.renew_due(engine)
        before = subscription_of(engine, acct)
        assert (before.status, before.failed_attempts) == ("past_due", 1)
        save_card(engine, acct, ALWAYS)
        with write_session(engine) as s:
            first = subscriptions.pay_now(s, acct)
        failed = answer(engine, token_of(first), confirmed=False)
        assert not failed.ok
        after = subscription_of(engine, acct)
        assert (after.failed_attempts, after.next_retry_at) == (1, before.next_retry_at)
        with write_session(engine) as s:  # trying again is a new payment
            second = subscriptions.pay_now(s, acct)
        assert second.confirm_url != first.confirm_url
        done = answer(engine, token_of(second))
    assert done.ok
    sub = subscription_of(engine, acct)
    assert (sub.status, sub.current_period_start, sub.failed_attempts) == ("active", DUE, 0)
    assert [i.status for i in invoices_of(engine, acct) if i.kind == "renewal"] == [
        "failed",
        "failed",
        "paid",
    ]


def test_a_confirmation_whose_change_no_longer_applies_charges_nothing(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        save_card(engine, acct, ALWAYS)
        waiting = {}
        for plan in ("pro", "studio"):
            p = preview(engine, acct, plan)
            with write_session(engine) as s:
                waiting[plan] = subscriptions.change_plan(s, acct, plan, expected_preview=p)
        assert answer(engine, token_of(waiting["studio"])).ok
        stale = answer(engine, token_of(waiting["pro"]))
    assert not stale.ok and "Your plan changed" in stale.message
    assert subscription_of(engine, acct).plan_key == "studio"
    upgrades = [(i.plan_key, i.status) for i in invoices_of(engine, acct) if i.kind == "upgrade"]
    assert upgrades == [("studio", "paid"), ("pro", "failed")]
    with read_session(engine) as s:
        charges = s.exec(select(LocalCharge).where(LocalCharge.account_id == acct)).all()
    assert sorted(c.ok for c in charges) == [False, True, True]  # starter, studio paid; pro never


def test_a_downgrade_that_needs_confirmation_applies_once(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "pro")
        save_card(engine, acct, ALWAYS)
        p = preview(engine, acct, "starter")
        with write_session(engine) as s:
            out = subscriptions.change_plan(s, acct, "starter", expected_preview=p)
        assert out.requires_action and subscription_of(engine, acct).plan_key == "pro"
        done = answer(engine, token_of(out))
        answer(engine, token_of(out))
    assert done.ok and subscription_of(engine, acct).plan_key == "starter"
    assert [i.status for i in invoices_of(engine, acct) if i.kind == "downgrade"] == ["paid"]
    with read_session(engine) as s:
        assert check_ledger(s) == []
