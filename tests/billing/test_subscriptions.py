"""The subscription engine, one test per rule of PRODUCT_RULES §4-§6 (named after it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from tests.support.subscriptions import (
    AMEX,
    DECLINED,
    FAILS_ON_CHARGE,
    INSUFFICIENT,
    T0,
    VISA,
    at,
    balance,
    change,
    entries,
    grants_of,
    invoices_of,
    outbox_of,
    preview,
    renew_due,
    save_card,
    sign_up,
    subscribe,
    subscription_of,
)
from workroom_app.billing import accounts, ledger, subscriptions
from workroom_app.billing.subscriptions import (
    AlreadySubscribed,
    CardRejected,
    NoSubscription,
    NotAPaidPlan,
    PaymentFacts,
    PreviewOutdated,
    SamePlan,
    SubscriptionError,
    UnknownPlan,
)
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    InvoiceLine,
    LocalCharge,
    SubscriptionStatus,
)

DAY = timedelta(days=1)


def _charges(engine) -> int:
    with read_session(engine) as s:
        return len(s.exec(select(LocalCharge)).all())


# ------------------------------------------------------------------ §4 plans


def test_starter_is_the_lowest_paid_plan_and_free_is_not_a_paid_plan(engine):
    with at(T0):
        a = sign_up(engine)
        with pytest.raises(NotAPaidPlan, match="Starter is the lowest paid plan"):
            subscribe(engine, a, "free")
        subscribe(engine, a, "pro")
        with pytest.raises(NotAPaidPlan):
            change(engine, a, "free")
        assert subscribe(engine, sign_up(engine), "starter").ok
    assert [e for e in entries(engine, a)] == [("trial_grant", 50), ("subscription_credits", 3000)]


# --------------------------------------------------------------- §5 checkout


def test_checkout_activates_the_plan_the_moment_payment_succeeds_with_credits_expiring_at_period_end(
    engine,
):
    with at(T0):
        a = sign_up(engine)
        out = subscribe(engine, a, "pro", card=VISA)
    assert out.ok and out.credits_added == 3000 and out.amount_cents == 3000
    sub = subscription_of(engine, a)
    assert (sub.plan_key, sub.status, sub.anchor_day) == ("pro", "active", 31)
    assert sub.current_period_end.replace(tzinfo=UTC) == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    with read_session(engine) as s:
        assert accounts.current_plan_key(s, a) == "pro"
    assert entries(engine, a) == [("trial_grant", 50), ("subscription_credits", 3000)]
    plan_grant = [g for g in grants_of(engine, a) if g.subscription_id == sub.id]
    assert len(plan_grant) == 1
    assert plan_grant[0].expires_at.replace(tzinfo=UTC) == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    assert balance(engine, a) == 3050


def test_checkout_with_amex_saves_only_brand_last4_and_expiry(engine):
    with at(T0):
        a = sign_up(engine)
        assert subscribe(engine, a, "starter", card=AMEX).ok
        with read_session(engine) as s:
            card = subscriptions.default_card(s, a)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("amex", "0005", 12, 2030)
    assert invoices_of(engine, a)[0].card_brand == "amex"


@pytest.mark.parametrize(
    "card,reason",
    [(DECLINED, "Your card was declined."), (INSUFFICIENT, "Your card has insufficient funds.")],
)
def test_a_declined_card_changes_nothing_but_a_failed_invoice_with_the_reason(engine, card, reason):
    with at(T0):
        a = sign_up(engine)
        out = subscribe(engine, a, "pro", card=card)
    assert not out.ok and out.message == reason
    assert subscription_of(engine, a) is None
    assert entries(engine, a) == [("trial_grant", 50)]
    [inv] = invoices_of(engine, a)
    assert (inv.status, inv.failure_reason, inv.card_last4) == ("failed", reason, card.number[-4:])
    assert outbox_of(engine, a) == []  # no receipt
    with read_session(engine) as s:
        assert subscriptions.default_card(s, a) is None  # the declined card is not saved
    # A retry with a good card gets its own payment and activates.
    with at(T0 + timedelta(minutes=1)):
        assert subscribe(engine, a, "pro", card=VISA).ok
    assert [i.status for i in invoices_of(engine, a)] == ["failed", "paid"]


def test_an_invalid_card_form_is_refused_before_anything_is_written(engine):
    with at(T0):
        a = sign_up(engine)
        bad = subscriptions.CardForm("4242424242424241", 12, 2030, "123")
        with pytest.raises(CardRejected) as exc:
            subscribe(engine, a, "pro", card=bad)
        assert exc.value.field == "number"
        expired = subscriptions.CardForm("4242424242424242", 1, 2025, "123")
        with pytest.raises(CardRejected, match="past"):
            subscribe(engine, a, "pro", card=expired)
    assert invoices_of(engine, a) == [] and _charges(engine) == 0


def test_checkout_twice_with_the_same_confirmation_charges_once(engine):
    with at(T0):
        a = sign_up(engine)
        with read_session(engine) as s:
            p = subscriptions.preview_subscribe(s, a, "pro")
        assert (p.charge_cents, p.credits_added, p.renewal_date.isoformat()) == (
            3000,
            3000,
            "2026-02-28",
        )
        for _ in range(2):
            with write_session(engine) as s:
                out = subscriptions.subscribe(s, a, "pro", card=VISA, expected_preview=p)
        assert out.ok and out.replayed
        with pytest.raises(AlreadySubscribed):
            subscribe(engine, a, "studio")
    assert _charges(engine) == 1 and len(invoices_of(engine, a)) == 1
    assert balance(engine, a) == 3050


# ---------------------------------------------------------------- §5 renewal


def test_period_renews_on_the_same_day_and_the_31st_returns_after_short_months(engine):
    with at(T0):  # January 31st
        a = sign_up(engine)
        subscribe(engine, a, "starter")
    seen = []
    moment = T0
    for _ in range(3):
        moment = subscription_of(engine, a).current_period_end.replace(tzinfo=UTC)
        seen.append(moment.date().isoformat())
        with at(moment):
            assert renew_due(engine).renewed == 1
    assert seen == ["2026-02-28", "2026-03-31", "2026-04-30"]
    assert subscription_of(engine, a).current_period_end.date().isoformat() == "2026-05-31"


def test_renewal_expires_the_previous_period_credits_and_adds_monthly_credits(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
    with at(T0 + 3 * DAY), write_session(engine) as s:
        ledger.debit(s, a, 100, feature="image", idempotency_key="gen-1")
    due = datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    with at(due - timedelta(seconds=1)):
        assert renew_due(engine).processed == 0  # not due yet
    with at(due):
        report = renew_due(engine)
        assert report.renewed == 1
        assert renew_due(engine).processed == 0  # running it again does nothing
    assert entries(engine, a)[-2:] == [("expiry", -2900), ("monthly_credits", 3000)]
    # trial credits do not expire: 50 trial credits + the new month (the debit
    # drew from the soonest-expiring plan credits first)
    assert balance(engine, a) == 50 + 3000
    inv = invoices_of(engine, a)[-1]
    assert (inv.kind, inv.status, inv.amount_cents) == ("renewal", "paid", 3000)
    assert inv.period_start.date().isoformat() == "2026-02-28"
    assert len(outbox_of(engine, a)) == 2


def test_trial_credits_do_not_expire(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "starter")
    with at(T0 + 45 * DAY):
        renew_due(engine)
    assert ("trial_grant", 50) in entries(engine, a)
    trial = [g for g in grants_of(engine, a) if g.source == "trial"][0]
    assert trial.amount_left == 50 and trial.expires_at is None


def test_failed_renewal_is_past_due_retries_on_days_1_3_5_then_returns_to_free(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        save_card(engine, a, FAILS_ON_CHARGE)
    due = datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    with at(due):
        out = renew_due(engine)
    assert out.failed == 1
    sub = subscription_of(engine, a)
    assert sub.status == SubscriptionStatus.PAST_DUE
    assert sub.next_retry_at.replace(tzinfo=UTC) == due + 1 * DAY
    # the previous period's credits expired at its end, no new credits
    assert entries(engine, a)[-1] == ("expiry", -3000)
    assert balance(engine, a) == 50
    with read_session(engine) as s:
        assert accounts.current_plan_key(s, a) == "pro"  # still Pro while retrying
    with at(due + 1 * DAY - timedelta(seconds=1)):
        assert renew_due(engine).processed == 0
    for day, expected_next in ((1, 3), (3, 5)):
        with at(due + day * DAY):
            assert renew_due(engine).failed == 1
        assert (
            subscription_of(engine, a).next_retry_at.replace(tzinfo=UTC)
            == due + expected_next * DAY
        )
    with at(due + 5 * DAY):
        assert renew_due(engine).ended == 1
    sub = subscription_of(engine, a)
    assert sub.status == SubscriptionStatus.ENDED
    with read_session(engine) as s:
        assert accounts.current_plan_key(s, a) == "free"
    failed = [i for i in invoices_of(engine, a) if i.status == "failed"]
    assert len(failed) == 4 and all(i.failure_reason == "Your card was declined." for i in failed)
    receipts_ = [m for m in outbox_of(engine, a) if m.invoice_id is not None]
    assert len(receipts_) == 1  # only the activation receipt
    # The alerts: three "payment failed" with their retry dates, then "plan ended".
    assert [m.subject for m in outbox_of(engine, a) if m.invoice_id is None] == [
        "Your payment failed"
    ] * 3 + ["Your plan has ended"]
    assert balance(engine, a) == 50
    assert [e for e in entries(engine, a) if e[0] == "monthly_credits"] == []


def test_a_retry_that_succeeds_renews_for_the_period_from_the_due_date(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        save_card(engine, a, FAILS_ON_CHARGE)
    due = datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    with at(due):
        renew_due(engine)
    with at(due + 2 * DAY):
        save_card(engine, a, VISA)
    with at(due + 3 * DAY):
        assert renew_due(engine).renewed == 1
    sub = subscription_of(engine, a)
    assert (sub.status, sub.failed_attempts, sub.next_retry_at) == ("active", 0, None)
    assert sub.current_period_end.date().isoformat() == "2026-03-31"
    assert entries(engine, a)[-2:] == [("expiry", -3000), ("monthly_credits", 3000)]


# ------------------------------------------------------------ §5 plan changes


def test_upgrade_charges_the_price_difference_adds_the_credit_difference_and_keeps_the_renewal_date(
    engine,
):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
    with at(T0 + 10 * DAY):
        p = preview(engine, a, "studio")
        assert (p.kind, p.charge_cents, p.credits_added, p.credits_burned) == (
            "upgrade",
            5000,
            6000,
            0,
        )
        assert p.new_renewal_date.isoformat() == "2026-02-28"
        assert p.balance_after == 3050 + 6000
        out = change(engine, a, "studio", expected=p)
    assert out.ok and out.amount_cents == p.charge_cents and out.credits_added == p.credits_added
    assert balance(engine, a) == p.balance_after
    assert entries(engine, a)[-1] == ("plan_change", 6000)
    sub = subscription_of(engine, a)
    assert sub.plan_key == "studio"
    assert sub.current_period_end.date().isoformat() == "2026-02-28"
    # later renewals are at the new price
    with at(datetime(2026, 2, 28, 10, 0, tzinfo=UTC)):
        renew_due(engine)
    assert invoices_of(engine, a)[-1].amount_cents == 8000
    assert entries(engine, a)[-2:] == [("expiry", -9000), ("monthly_credits", 9000)]


def test_upgrade_changes_nothing_unless_the_charge_succeeds(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "starter")
        save_card(engine, a, FAILS_ON_CHARGE)
        before = entries(engine, a)
        p = preview(engine, a, "pro")
        out = change(engine, a, "pro", expected=p)
    assert not out.ok and out.message == "Your card was declined."
    assert subscription_of(engine, a).plan_key == "starter"
    assert entries(engine, a) == before
    assert invoices_of(engine, a)[-1].status == "failed"
    assert len(outbox_of(engine, a)) == 1


def test_downgrade_burns_plan_credits_starts_a_new_period_today_and_keeps_trial_credits(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "studio")
    with at(T0 + DAY), write_session(engine) as s:
        ledger.debit(s, a, 1000, feature="video", idempotency_key="gen-1")
    today = datetime(2026, 2, 10, 15, 0, tzinfo=UTC)
    with at(today):
        p = preview(engine, a, "starter")
        assert (p.kind, p.charge_cents, p.credits_burned, p.credits_added) == (
            "downgrade",
            1000,
            8000,
            800,
        )
        assert p.new_renewal_date.isoformat() == "2026-03-10"
        out = change(engine, a, "starter", expected=p)
    assert out.ok and out.credits_burned == p.credits_burned and out.amount_cents == p.charge_cents
    assert entries(engine, a)[-2:] == [("plan_change", -8000), ("subscription_credits", 800)]
    assert balance(engine, a) == p.balance_after == 50 + 800
    sub = subscription_of(engine, a)
    assert (sub.plan_key, sub.anchor_day) == ("starter", 10)
    assert sub.current_period_start.replace(tzinfo=UTC) == today
    assert sub.current_period_end.date().isoformat() == "2026-03-10"


def test_a_confirmation_that_no_longer_matches_the_account_is_refused(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "studio")
        p = preview(engine, a, "pro")
        with write_session(engine) as s:  # a generation runs before the click
            ledger.debit(s, a, 10, feature="image", idempotency_key="gen-x")
        with pytest.raises(PreviewOutdated, match="review it again"):
            change(engine, a, "pro", expected=p)
        assert subscription_of(engine, a).plan_key == "studio"
        p2 = preview(engine, a, "pro")
        assert change(engine, a, "pro", expected=p2).ok
        with pytest.raises(PreviewOutdated):  # a confirmation for another change
            change(engine, a, "starter", expected=p2)


def test_plan_change_bad_input_gets_a_clear_error_and_changes_nothing(engine):
    with at(T0):
        a = sign_up(engine)
        with pytest.raises(NoSubscription):
            preview(engine, a, "pro")
        subscribe(engine, a, "pro")
        before = (entries(engine, a), len(invoices_of(engine, a)))
        for bad in ("platinum", "", None, 3, "PRO", "x" * 500):
            with pytest.raises(UnknownPlan, match="does not exist"):
                change(engine, a, bad)
        with pytest.raises(SamePlan, match="already on Pro"):
            change(engine, a, "pro")
        with pytest.raises(NotAPaidPlan):
            change(engine, a, "free")
        with pytest.raises(SubscriptionError):
            change(engine, -1, "studio")
        with write_session(engine) as s, pytest.raises(SubscriptionError, match="negative"):
            sub = subscriptions.live_subscription(s, a)
            subscriptions.record_renewal_paid(
                s,
                sub,
                period_start=T0,
                period_end=T0 + 28 * DAY,
                payment=PaymentFacts(ok=True, amount_cents=-3000, idempotency_key="neg"),
            )
    assert (entries(engine, a), len(invoices_of(engine, a))) == before


# -------------------------------------------------------------- §5 cancel


def test_cancel_keeps_plan_and_credits_until_period_end_then_they_expire_and_account_is_free(
    engine,
):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
    with at(T0 + 5 * DAY):
        with write_session(engine) as s:
            out = subscriptions.cancel(s, a)
        assert "Feb 28, 2026" in out.message
        with write_session(engine) as s:
            assert subscriptions.cancel(s, a).replayed  # twice: nothing more
    with at(datetime(2026, 2, 28, 9, 59, tzinfo=UTC)):
        renew_due(engine)
        with read_session(engine) as s:
            assert accounts.current_plan_key(s, a) == "pro"
            assert subscriptions.summary(s, a).next_renewal_date is None
        assert balance(engine, a) == 3050
    with at(datetime(2026, 2, 28, 10, 0, tzinfo=UTC)):
        assert renew_due(engine).ended == 1
    assert entries(engine, a)[-1] == ("expiry", -3000)
    assert balance(engine, a) == 50
    assert subscription_of(engine, a).status == "ended"
    with read_session(engine) as s:
        assert accounts.current_plan_key(s, a) == "free"
    assert [i.kind for i in invoices_of(engine, a)] == ["activation"]  # nothing charged
    with at(datetime(2026, 3, 2, tzinfo=UTC)):
        with pytest.raises(NoSubscription), write_session(engine) as s:
            subscriptions.resume(s, a)
        assert subscribe(engine, a, "starter").ok  # can subscribe again later


def test_resume_before_period_end_keeps_renewing(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        with write_session(engine) as s:
            subscriptions.cancel(s, a)
        with write_session(engine) as s:
            out = subscriptions.resume(s, a)
        assert out.ok and not out.replayed
        with write_session(engine) as s:
            assert subscriptions.resume(s, a).replayed
    with at(datetime(2026, 2, 28, 10, 0, tzinfo=UTC)):
        assert renew_due(engine).renewed == 1
    assert subscription_of(engine, a).status == "active"


# ------------------------------------------------------- §6 invoices, receipts


def test_every_successful_payment_has_an_invoice_with_number_lines_amount_card_and_status(engine):
    with at(T0):
        a = sign_up(engine)
        subscribe(engine, a, "starter")
    with at(T0 + DAY):
        change(engine, a, "studio")
    with at(T0 + 2 * DAY):
        change(engine, a, "pro")  # the new period starts February 2nd
    with at(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)):
        renew_due(engine)
    invs = invoices_of(engine, a)
    assert [(i.kind, i.amount_cents) for i in invs] == [
        ("activation", 1000),
        ("upgrade", 7000),
        ("downgrade", 3000),
        ("renewal", 3000),
    ]
    assert [i.number for i in invs] == [f"WR-{a}-000{n}" for n in range(1, 5)]
    with read_session(engine) as s:
        for inv in invs:
            assert (inv.status, inv.card_brand, inv.card_last4, inv.currency) == (
                "paid",
                "visa",
                "4242",
                "usd",
            )
            assert inv.period_start and inv.period_end
            lines = s.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id)).all()
            assert sum(line.amount_cents * line.quantity for line in lines) == inv.amount_cents
    # a receipt with the invoice PDF for each successful payment
    mails = outbox_of(engine, a)
    assert [m.invoice_id for m in mails] == [i.id for i in invs]
    assert all(m.attachment_name == f"{i.number}.pdf" for m, i in zip(mails, invs, strict=True))


def test_stripe_style_record_functions_are_idempotent(engine):
    with at(T0):
        a = sign_up(engine)
        facts = PaymentFacts(
            ok=True,
            amount_cents=3000,
            idempotency_key="stripe:in_1",
            gateway="stripe",
            gateway_ref="in_1",
            card_brand="visa",
            card_last4="4242",
        )
        for _ in range(2):
            with write_session(engine) as s:
                out = subscriptions.activate_from_gateway(
                    s,
                    a,
                    "pro",
                    period_start=T0,
                    period_end=T0 + 28 * DAY,
                    payment=facts,
                    gateway_subscription_id="sub_1",
                )
        assert out.replayed
    with at(T0 + 28 * DAY):
        renewal = PaymentFacts(
            ok=True, amount_cents=3000, idempotency_key="stripe:in_2", gateway="stripe"
        )
        for _ in range(2):
            with write_session(engine) as s:
                sub = subscriptions.live_subscription(s, a)
                subscriptions.record_renewal_paid(
                    s, sub, period_start=T0 + 28 * DAY, period_end=T0 + 59 * DAY, payment=renewal
                )
        # a stripe subscription is not renewed by the local scheduler
        assert renew_due(engine).processed == 0
    assert entries(engine, a) == [
        ("trial_grant", 50),
        ("subscription_credits", 3000),
        ("expiry", -3000),
        ("monthly_credits", 3000),
    ]
    assert len(invoices_of(engine, a)) == 2
    with at(T0 + 30 * DAY):
        for _ in range(2):
            with write_session(engine) as s:
                sub = subscriptions.live_subscription(s, a) or subscription_of(engine, a)
                subscriptions.end_subscription(s, sub, reason="deleted")
    assert entries(engine, a)[-1] == ("expiry", -3000) and balance(engine, a) == 50
