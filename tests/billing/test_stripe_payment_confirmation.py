"""3-D Secure, Pay now and auto top-up with Stripe, against the stand-in (SQLite and
PostgreSQL): invoices waiting for authentication are neither paid nor failed, and
whatever the order and number of webhook deliveries (and the synchronous answer),
each payment is applied exactly once."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlmodel import select

from tests.support.stripe_world import T0, make_world
from workroom_app.billing import (
    alerts,
    auto_top_up,
    clock,
    ledger,
    payment_confirmation,
    stripe_payments,
    stripe_webhooks,
    subscriptions,
)
from workroom_app.db import read_session, write_session
from workroom_app.models import ActionType, OutboxEmail, PaymentConfirmation

TRIAL = 50


@pytest.fixture
def world(engine, monkeypatch):
    from workroom_app import settings as settings_module
    from workroom_app.billing import payments

    with clock.pinned(T0):
        w = make_world(engine)
        monkeypatch.setattr(settings_module, "get_settings", lambda: w.gateway.settings)
        monkeypatch.setattr(payments, "_factories", {"stripe": lambda _s: w.gateway})
        monkeypatch.setattr(payments, "_instances", {})
        yield w


def customer_of(w, stripe_sub_id):
    return w.standin.subscriptions[stripe_sub_id]["customer"]


def subscriber(w, email="ada@example.com", plan="starter"):
    acct = w.sign_up(email)
    stripe_sub = w.checkout(acct, plan)
    w.deliver_pending()
    return acct, stripe_sub


def confirmations(w, acct):
    with read_session(w.engine) as s:
        return list(
            s.exec(
                select(PaymentConfirmation)
                .where(PaymentConfirmation.account_id == acct)
                .order_by(PaymentConfirmation.id)
            )
        )


def shuffled_twice(events):
    """Every delivery twice, newest first, then again oldest first."""
    return list(reversed(events)) + list(events)


def renewals(w, acct):
    return [(i.status, i.amount_cents) for i in w.invoices(acct) if i.kind == "renewal"]


# ----------------------------------------------------------------- renewals


def test_a_renewal_that_needs_authentication_waits_then_renews_once(world):
    w = world
    acct, stripe_sub = subscriber(w)
    w.standin.set_card(customer_of(w, stripe_sub), "authentication_required")
    invoice = w.standin.renew(stripe_sub)
    events = w.standin.take_events()
    assert "invoice.payment_action_required" in [e.type for e in events]
    assert "invoice.payment_failed" not in [e.type for e in events]
    w.deliver(shuffled_twice(events))
    # Neither paid nor failed: past due, no declined row, "Confirm this payment".
    assert w.subscription(acct).status == "past_due"
    assert renewals(w, acct) == []
    [row] = confirmations(w, acct)
    assert (row.kind, row.status, row.confirm_url) == (
        "renewal",
        "pending",
        invoice["hosted_invoice_url"],
    )
    with read_session(w.engine) as s:
        [view] = payment_confirmation.pending_for_account(s, acct)
        assert view.url == invoice["hosted_invoice_url"]
        mails = s.exec(select(OutboxEmail).where(OutboxEmail.account_id == acct)).all()
    assert [m.subject for m in mails].count("Confirm your renewal payment") == 1
    # The customer confirms on Stripe's hosted page.
    w.standin.authenticate_invoice(invoice["id"])
    w.deliver(shuffled_twice(w.standin.take_events()))
    w.deliver(shuffled_twice(events))  # the old ones again, late: nothing changes
    assert w.subscription(acct).status == "active"
    assert renewals(w, acct) == [("paid", 1000)]
    assert [r.status for r in confirmations(w, acct)] == ["succeeded"]
    monthly = [e for e in w.entries(acct) if e[0] == ActionType.MONTHLY_CREDITS.value]
    assert monthly == [(ActionType.MONTHLY_CREDITS.value, 800)]
    assert w.balance(acct) == TRIAL + 800  # the old plan credits expired, the new ones came


def test_a_failed_authentication_on_the_hosted_page_is_a_declined_renewal(world):
    w = world
    acct, stripe_sub = subscriber(w)
    w.standin.set_card(customer_of(w, stripe_sub), "authentication_required")
    invoice = w.standin.renew(stripe_sub)
    w.deliver_pending()
    w.standin.authenticate_invoice(invoice["id"], succeed=False)
    w.deliver(shuffled_twice(w.standin.take_events()))
    sub = w.subscription(acct)
    assert sub.status == "past_due" and sub.failed_attempts == 1
    [failed] = [i for i in w.invoices(acct) if i.kind == "renewal"]
    assert failed.status == "failed" and "unable to authenticate" in failed.failure_reason
    assert [r.status for r in confirmations(w, acct)] == ["failed"]


def test_not_confirmed_in_time_follows_dunning_and_can_still_be_paid(world):
    w = world
    acct, stripe_sub = subscriber(w)
    w.standin.set_card(customer_of(w, stripe_sub), "authentication_required")
    invoice = w.standin.renew(stripe_sub)
    w.deliver_pending()
    with clock.pinned(T0 + payment_confirmation.CONFIRM_WITHIN):
        assert payment_confirmation.expire_due(w.engine) == 1
    [failed] = [i for i in w.invoices(acct) if i.kind == "renewal"]
    assert failed.status == "failed" and failed.failure_code == payment_confirmation.EXPIRED_CODE
    assert w.subscription(acct).status == "past_due"
    # Stripe keeps the invoice open: paid later, it still renews, once.
    w.standin.authenticate_invoice(invoice["id"])
    w.deliver(shuffled_twice(w.standin.take_events()))
    assert w.subscription(acct).status == "active"
    assert sorted(renewals(w, acct)) == [("failed", 1000), ("paid", 1000)]


# ----------------------------------------------------------------- upgrade


def test_an_upgrade_that_needs_authentication_applies_once_after_confirmation(world):
    w = world
    acct, stripe_sub = subscriber(w)
    w.standin.set_card(customer_of(w, stripe_sub), "authentication_required")
    with read_session(w.engine) as s:
        preview = subscriptions.preview_change(s, acct, "pro")
    out = stripe_webhooks.change_plan(w.engine, w.gateway, acct, "pro", expected_preview=preview)
    assert out.requires_action and out.confirm_url.startswith("https://invoice.stripe.com/")
    again = stripe_webhooks.change_plan(w.engine, w.gateway, acct, "pro", expected_preview=preview)
    assert again.confirm_url == out.confirm_url  # one Stripe invoice, one confirmation
    assert w.subscription(acct).plan_key == "starter"
    [upgrade_invoice] = [
        i for i in w.standin.invoices.values() if i["metadata"].get("workroom_kind") == "upgrade"
    ]
    assert upgrade_invoice["status"] == "open"  # not voided: it waits for the customer
    w.deliver_pending()
    w.standin.authenticate_invoice(upgrade_invoice["id"])
    w.deliver(shuffled_twice(w.standin.take_events()))
    assert w.subscription(acct).plan_key == "pro"
    assert [(i.kind, i.status) for i in w.invoices(acct) if i.kind == "upgrade"] == [
        ("upgrade", "paid")
    ]
    assert [r.status for r in confirmations(w, acct)] == ["succeeded"]


# ----------------------------------------------------------------- Pay now


def past_due(w, card="declined"):
    acct, stripe_sub = subscriber(w)
    w.standin.set_card(customer_of(w, stripe_sub), card)
    invoice = w.standin.renew(stripe_sub)
    w.deliver_pending()
    assert w.subscription(acct).status == "past_due"
    return acct, stripe_sub, invoice


def test_pay_now_with_stripe_pays_the_open_renewal_once(world):
    w = world
    acct, stripe_sub, invoice = past_due(w)
    w.standin.set_card(customer_of(w, stripe_sub), "visa")  # the card was replaced
    out = stripe_payments.pay_now(w.engine, w.gateway, acct)
    assert out.ok and out.credits_added == 800
    assert w.subscription(acct).status == "active"
    w.deliver(shuffled_twice(w.standin.take_events()))
    with pytest.raises(subscriptions.NoSubscription):
        stripe_payments.pay_now(w.engine, w.gateway, acct)
    assert ("paid", 1000) in renewals(w, acct)
    assert [i for i in renewals(w, acct) if i[0] == "paid"] == [("paid", 1000)]
    [pay] = w.standin.requests_to("POST", rf"/v1/invoices/{invoice['id']}/pay")
    assert pay.idempotency_key


def test_pay_now_with_stripe_declined_says_why(world):
    w = world
    acct, _, _ = past_due(w)
    out = stripe_payments.pay_now(w.engine, w.gateway, acct)
    assert not out.ok and out.message == "Your card was declined."
    assert w.subscription(acct).status == "past_due"


def test_pay_now_with_an_authentication_card_goes_to_the_hosted_page(world):
    w = world
    acct, stripe_sub, invoice = past_due(w)
    w.standin.set_card(customer_of(w, stripe_sub), "authentication_required")
    out = stripe_payments.pay_now(w.engine, w.gateway, acct)
    assert out.requires_action and out.confirm_url == invoice["hosted_invoice_url"]
    again = stripe_payments.pay_now(w.engine, w.gateway, acct)  # a second click: the same one
    assert again.confirm_url == out.confirm_url
    w.standin.authenticate_invoice(invoice["id"])
    w.deliver(shuffled_twice(w.standin.take_events()))
    assert w.subscription(acct).status == "active"
    assert [i for i in renewals(w, acct) if i[0] == "paid"] == [("paid", 1000)]


# ----------------------------------------------------------------- auto top-up


def turn_on(w, acct, *, threshold=100, cap=2):
    with write_session(w.engine) as s:
        auto_top_up.save_settings(
            s, acct, enabled=True, threshold=threshold, pack_key="credits_500", monthly_cap=cap
        )


def spend(w, acct, amount, key):
    with write_session(w.engine) as s:
        return ledger.debit(s, acct, amount, feature="image", idempotency_key=key)


def top_ups(w, acct):
    return [
        (i.status, i.amount_cents)
        for i in w.invoices(acct)
        if i.idempotency_key.startswith(auto_top_up.KEY_PREFIX)
    ]


def test_turning_auto_top_up_on_needs_a_stripe_card(world):
    w = world
    free = w.sign_up("free@example.com")
    with write_session(w.engine) as s, pytest.raises(alerts.AlertError, match="Add a card"):
        auto_top_up.save_settings(
            s, free, enabled=True, threshold=10, pack_key="credits_500", monthly_cap=1
        )


def test_auto_top_up_charges_off_session_and_credits_once(world):
    w = world
    acct, _ = subscriber(w)  # 850
    turn_on(w, acct)
    spend(w, acct, 800, "a")  # 50: crossed -> Stripe top-up after the commit
    assert w.balance(acct) == 550
    assert top_ups(w, acct) == [("paid", 600)]
    [top_up_invoice] = [
        i
        for i in w.standin.invoices.values()
        if i["metadata"].get("workroom_kind") == "auto_top_up"
    ]
    assert top_up_invoice["amount_paid"] == 600 and top_up_invoice["status"] == "paid"
    assert all(r.idempotency_key for r in w.standin.requests_to("POST", r"/v1/invoices.*"))
    w.deliver(shuffled_twice(w.standin.take_events()))  # webhooks after the answer: nothing new
    assert w.balance(acct) == 550 and top_ups(w, acct) == [("paid", 600)]
    assert [r.status for r in confirmations(w, acct)] == ["succeeded"]


def test_the_webhook_first_then_the_answer_credits_once(world):
    w = world
    acct, stripe_sub = subscriber(w)
    turn_on(w, acct)
    with write_session(w.engine) as s:
        pack = auto_top_up.get_catalog().pack("credits_500")
        row = stripe_payments.reserve_top_up(s, acct, f"{auto_top_up.KEY_PREFIX}{acct}:x", pack)
        row_id, key = row.id, row.charge_key
    result = stripe_payments.charge_pack(
        w.gateway, customer_of(w, stripe_sub), acct, pack, key, "usd"
    )
    w.deliver(shuffled_twice(w.standin.take_events()))  # Stripe was quicker than our answer
    with write_session(w.engine) as s:
        stripe_payments.apply_pack_invoice(
            s, s.get(PaymentConfirmation, row_id), result.invoice, requires_action=False
        )
    stripe_payments.run_top_up(w.engine, w.gateway, row_id)  # and a retry: nothing
    assert top_ups(w, acct) == [("paid", 600)]
    assert [e for e in w.entries(acct) if e[0] == ActionType.CREDIT_PACK.value] == [
        (ActionType.CREDIT_PACK.value, 500)
    ]


def test_a_declined_stripe_top_up_turns_it_off_with_an_email(world):
    w = world
    acct, stripe_sub = subscriber(w)
    turn_on(w, acct)
    w.standin.set_card(customer_of(w, stripe_sub), "insufficient_funds")
    spend(w, acct, 800, "a")
    w.deliver(shuffled_twice(w.standin.take_events()))
    assert top_ups(w, acct) == [("failed", 600)]
    failed = [i for i in w.invoices(acct) if i.kind == "pack"]
    assert [(i.status, i.failure_reason) for i in failed] == [
        ("failed", "Your card has insufficient funds.")
    ]
    with read_session(w.engine) as s:
        assert not alerts.read_settings(s, acct).auto_top_up
        subjects = [m.subject for m in s.exec(select(OutboxEmail)).all()]
    assert "Auto top-up is off" in subjects
    assert w.balance(acct) == 50


def test_a_stripe_top_up_that_needs_authentication_waits_then_credits_once(world):
    w = world
    acct, stripe_sub = subscriber(w)
    turn_on(w, acct)
    w.standin.set_card(customer_of(w, stripe_sub), "authentication_required")
    spend(w, acct, 800, "a")
    events = w.standin.take_events()
    w.deliver(shuffled_twice(events))
    [row] = confirmations(w, acct)
    assert row.status == "pending" and row.confirm_url.startswith("https://invoice.stripe.com/")
    assert w.balance(acct) == 50
    spend(w, acct, 10, "b")  # below again while it waits: no second top-up
    assert len(confirmations(w, acct)) == 1
    w.standin.authenticate_invoice(row.gateway_ref)
    w.deliver(shuffled_twice(w.standin.take_events()))
    w.deliver(events)
    assert w.balance(acct) == 540 and top_ups(w, acct) == [("paid", 600)]


def test_32_concurrent_debits_top_up_once_through_stripe(world):
    w = world
    acct = w.sign_up("pro@example.com")
    w.checkout(acct, "pro")  # 3,050
    w.deliver_pending()
    turn_on(w, acct, threshold=1600, cap=5)  # crossed by the 30th debit only
    barrier = threading.Barrier(32)
    errors = []

    def run(i):
        barrier.wait()
        try:
            with clock.pinned(T0):
                spend(w, acct, 50, f"c{i}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    w.deliver(shuffled_twice(w.standin.take_events()))
    assert top_ups(w, acct) == [("paid", 600)]
    assert w.balance(acct) == 3050 - 32 * 50 + 500
    assert len(list(itertools.chain(confirmations(w, acct)))) == 1
