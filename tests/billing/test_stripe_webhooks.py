"""Stripe webhooks end to end against the stand-in: signed deliveries,
duplicates, unknown types, any order, and each life-cycle event through the
subscription engine (PRODUCT_RULES §5-§6)."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime

import pytest

from tests.support.stripe_world import T0, make_world
from workroom_app.billing import clock, stripe_webhooks, subscriptions
from workroom_app.billing.payments.stripe import StripeGatewayError
from workroom_app.models import ActionType

TRIAL = 50


@pytest.fixture
def world(sqlite_engine):
    with clock.pinned(T0):
        yield make_world(sqlite_engine)


@pytest.fixture
def both_world(engine):
    """The same, on SQLite and PostgreSQL."""
    with clock.pinned(T0):
        yield make_world(engine)


# ------------------------------------------------------------------ checkout


def test_checkout_completed_activates_the_plan_with_its_credits(both_world):
    w = both_world
    account = w.sign_up("ada@example.com")
    sub_id = w.checkout(account, "starter", card="amex")
    outcomes = w.deliver_pending()
    assert [o.status_code for o in outcomes] == [200] * len(outcomes)
    sub = w.subscription(account)
    assert (sub.plan_key, sub.status, sub.gateway, sub.gateway_subscription_id) == (
        "starter",
        "active",
        "stripe",
        sub_id,
    )
    assert sub.current_period_end.replace(tzinfo=UTC) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert w.balance(account) == TRIAL + 800
    assert w.entries(account) == [
        (ActionType.TRIAL_GRANT, 50),
        (ActionType.SUBSCRIPTION_CREDITS, 800),
    ]
    [invoice] = w.invoices(account)
    assert (invoice.kind, invoice.status, invoice.amount_cents) == ("activation", "paid", 1000)
    assert (invoice.card_brand, invoice.card_last4, invoice.gateway) == ("amex", "0005", "stripe")
    # Every delivery is stored raw with its outcome.
    stored = {e.id: e for e in w.events()}
    assert set(stored) == {json.loads(e.payload)["id"] for e in w.standin.all_events}
    handled = {"checkout.session.completed", "invoice.paid", "customer.subscription.updated"}
    for event in stored.values():
        assert event.outcome == ("processed" if event.type in handled else "ignored"), event.type
        assert json.loads(event.payload)["type"] == event.type


def test_a_checkout_event_alone_is_enough_and_the_rest_change_nothing(world):
    w = world
    account = w.sign_up("bo@example.com")
    w.checkout(account, "pro")
    events = w.standin.take_events()
    [completed] = [e for e in events if e.type == "checkout.session.completed"]
    w.deliver([completed])
    after_first = w.state(account)
    assert after_first[1] == TRIAL + 3000
    w.deliver(events)
    assert w.state(account) == after_first


@pytest.mark.parametrize(
    "order", list(itertools.permutations(range(3))), ids=lambda o: "-".join(map(str, o))
)
def test_every_order_of_checkout_events_with_duplicates_ends_in_the_same_state(world, order):
    """checkout.session.completed, invoice.paid and customer.subscription.updated
    in every order, each delivered twice: the same final state every time."""
    w = world
    wanted = ("checkout.session.completed", "invoice.paid", "customer.subscription.updated")

    def run(account, sequence):
        w.checkout(account, "starter")
        events = {e.type: e for e in w.standin.take_events(*wanted)}
        w.standin.take_events()
        outcomes = w.deliver([events[wanted[i]] for i in sequence])
        assert all(o.status_code == 200 for o in outcomes)
        return outcomes

    reference = w.sign_up("reference@example.com")
    run(reference, (0, 1, 2))
    expected = w.state(reference)
    assert expected[0][0:2] == ("starter", "active") and expected[1] == TRIAL + 800

    account = w.sign_up("permuted@example.com")
    outcomes = run(account, order + order)  # every event twice
    assert w.state(account) == expected
    assert [o.outcome for o in outcomes[3:]] == ["duplicate"] * 3


def test_any_order_of_a_whole_history_ends_in_the_same_state(world):
    """Checkout, an upgrade, two renewals (one declined then retried), a cancel:
    all their events shuffled, with duplicates."""
    w = world

    def history(account):
        sub_id = w.checkout(account, "starter")
        w.gateway.upgrade(sub_id, "pro", idempotency_key=f"up-{account}")
        with clock.pinned(datetime(2026, 2, 28, 12, 0, tzinfo=UTC)):
            w.standin.renew(sub_id)
        customer = w.standin.subscriptions[sub_id]["customer"]
        w.standin.set_card(customer, "insufficient_funds")
        with clock.pinned(datetime(2026, 3, 31, 12, 0, tzinfo=UTC)):
            invoice = w.standin.renew(sub_id)
        w.standin.set_card(customer, "visa")
        with clock.pinned(datetime(2026, 4, 1, 12, 0, tzinfo=UTC)):
            w.standin.retry_invoice(invoice["id"])
        w.gateway.cancel_at_period_end(sub_id, idempotency_key=f"cancel-{account}")
        return w.standin.take_events()

    reference = w.sign_up("ref@example.com")
    w.deliver(history(reference))
    expected = w.state(reference)
    plan, status, *_ = expected[0]
    assert (plan, status) == ("pro", "active")
    assert expected[0][6] is True  # cancel at period end

    for seed in range(3):
        account = w.sign_up(f"shuffled{seed}@example.com")
        events = history(account)
        deliveries = events + random.Random(seed).sample(events, len(events) // 2)
        random.Random(seed + 100).shuffle(deliveries)
        w.deliver(deliveries)
        assert w.state(account) == expected, seed


# ------------------------------------------------------------------ delivery rules


def test_bad_signature_gets_400_and_changes_nothing(world):
    w = world
    account = w.sign_up("eve@example.com")
    w.checkout(account)
    event = next(e for e in w.standin.take_events() if e.type == "checkout.session.completed")
    forged = event.payload.replace('"livemode": false', '"livemode": true')
    bad = [
        (event.payload.encode(), None),
        (event.payload.encode(), ""),
        (event.payload.encode(), "t=123,v1=deadbeef"),
        (forged.encode(), event.signature),  # body changed after signing
        (event.payload.encode(), w.standin.sign(event.payload).replace("v1=", "v0=")),
        (b"\xff\xfe", event.signature),
    ]
    old = int(T0.timestamp())  # signed long ago: a replayed capture
    bad.append((event.payload.encode(), w.standin.sign(event.payload, timestamp=old - 10_000)))
    for payload, signature in bad:
        outcome = w.processor.process(payload, signature)
        assert (outcome.status_code, outcome.outcome) == (400, "rejected"), signature
    assert w.events() == []
    assert w.subscription(account) is None
    assert w.balance(account) == TRIAL


def test_signed_but_malformed_body_gets_400(world):
    w = world
    for body in (
        "not json",
        "[]",
        json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid"}),
    ):
        outcome = w.processor.process(body.encode(), w.standin.sign(body))
        assert outcome.status_code == 400
    assert w.events() == []


def test_duplicate_gets_200_and_changes_nothing(both_world):
    w = both_world
    account = w.sign_up("dup@example.com")
    w.checkout(account)
    events = w.standin.take_events()
    w.deliver(events)
    before = (w.state(account), [(e.id, e.outcome, e.processed_at) for e in w.events()])
    requests_before = len(w.standin.requests)
    again = w.deliver(events)
    assert {(o.status_code, o.outcome) for o in again} == {(200, "duplicate")}
    assert (w.state(account), [(e.id, e.outcome, e.processed_at) for e in w.events()]) == before
    # A duplicate is answered from our table alone: no call to Stripe.
    assert len(w.standin.requests) == requests_before


def test_unknown_event_type_is_stored_and_ignored(world):
    w = world
    account = w.sign_up("unk@example.com")
    sub_id = w.checkout(account)
    w.deliver_pending()
    before = w.state(account)
    event = w.standin.make_event("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"})
    weird = w.standin.make_event(
        "customer.subscription.paused", w.standin._render_subscription(sub_id)
    )
    for e in (event, weird):
        outcome = w.processor.process(e.payload.encode(), e.signature)
        assert (outcome.status_code, outcome.outcome) == (200, "ignored")
    stored = {e.id: e for e in w.events()}
    assert stored[event.id].outcome == "ignored" and stored[event.id].payload == event.payload
    assert w.state(account) == before


def test_handlers_act_on_what_stripe_says_not_on_the_payload(world):
    w = world
    account = w.sign_up("forge@example.com")
    sub_id = w.checkout(account, "starter")
    w.deliver_pending()
    before = w.state(account)
    # A genuine signature over a payload claiming the plan was cancelled and is Studio.
    fake = w.standin._render_subscription(sub_id)
    fake.update(status="canceled", cancel_at_period_end=True)
    fake["items"]["data"][0]["price"] = w.standin.prices[w.gateway.price_id("studio")]
    event = w.standin.make_event("customer.subscription.deleted", fake)
    assert w.processor.process(event.payload.encode(), event.signature).status_code == 200
    assert w.state(account) == before


def test_stripe_unreachable_stores_the_event_as_failed_and_a_redelivery_processes_it(
    world, monkeypatch
):
    w = world
    account = w.sign_up("down@example.com")
    w.checkout(account)
    events = w.standin.take_events("checkout.session.completed")

    def unreachable(*args, **kwargs):
        raise StripeGatewayError("We could not reach Stripe; nothing was charged.")

    monkeypatch.setattr(w.gateway, "retrieve_checkout_session", unreachable)
    [outcome] = w.deliver(events)
    assert (outcome.status_code, outcome.outcome) == (500, "failed")
    [stored] = w.events()
    assert stored.outcome == "failed" and "could not reach Stripe" in stored.error
    assert w.subscription(account) is None
    monkeypatch.undo()
    [outcome] = w.deliver(events)  # Stripe retries the delivery
    assert (outcome.status_code, outcome.outcome) == (200, "processed")
    assert w.subscription(account).status == "active"


def test_a_failing_handler_rolls_back_everything_it_did(world, monkeypatch):
    w = world
    account = w.sign_up("boom@example.com")
    w.checkout(account, "pro")
    events = w.standin.take_events("invoice.paid")

    real_activate = subscriptions.activate_from_gateway

    def activate_then_fail(*args, **kwargs):
        real_activate(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(subscriptions, "activate_from_gateway", activate_then_fail)
    [outcome] = w.deliver(events)
    assert outcome.status_code == 500
    assert (
        w.subscription(account) is None
        and w.balance(account) == TRIAL
        and w.invoices(account) == []
    )
    assert w.events()[0].outcome == "failed"


# ------------------------------------------------------------------ renewals


def test_renewal_via_invoice_paid_goes_through_the_engines_renewal_code(world, monkeypatch):
    w = world
    account = w.sign_up("renew@example.com")
    sub_id = w.checkout(account, "starter")
    w.deliver_pending()
    calls = []
    real = subscriptions.record_renewal_paid

    def spy(*args, **kwargs):
        calls.append(kwargs["payment"].idempotency_key)
        return real(*args, **kwargs)

    monkeypatch.setattr(subscriptions, "record_renewal_paid", spy)
    with clock.pinned(datetime(2026, 2, 28, 12, 0, tzinfo=UTC)):
        invoice = w.standin.renew(sub_id)
        w.deliver(w.standin.take_events("invoice.paid"))
    assert calls == [f"stripe:{invoice['id']}"]
    sub = w.subscription(account)
    assert sub.current_period_start.replace(tzinfo=UTC) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert sub.current_period_end.replace(tzinfo=UTC) == datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    assert w.entries(account)[-2:] == [(ActionType.EXPIRY, -800), (ActionType.MONTHLY_CREDITS, 800)]
    assert w.balance(account) == TRIAL + 800
    assert [i.kind for i in w.invoices(account)] == ["activation", "renewal"]


def test_failed_renewal_makes_the_plan_past_due_and_a_paid_retry_renews_it(world):
    w = world
    account = w.sign_up("late@example.com")
    sub_id = w.checkout(account, "pro")
    w.deliver_pending()
    customer = w.standin.subscriptions[sub_id]["customer"]
    w.standin.set_card(customer, "insufficient_funds")
    due = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    with clock.pinned(due):
        invoice = w.standin.renew(sub_id)
        outcomes = w.deliver(w.standin.take_events("invoice.payment_failed"))
    assert outcomes[0].status_code == 200
    sub = w.subscription(account)
    assert (sub.status, sub.failed_attempts, sub.plan_key) == ("past_due", 1, "pro")
    failed = w.invoices(account)[-1]
    assert (failed.kind, failed.status, failed.failure_reason) == (
        "renewal",
        "failed",
        "Your card has insufficient funds.",
    )
    # No new credits; the previous period's credits expired at its end.
    assert w.balance(account) == TRIAL
    assert (ActionType.MONTHLY_CREDITS, 3000) not in w.entries(account)
    w.standin.set_card(customer, "mastercard")
    with clock.pinned(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)):
        w.standin.retry_invoice(invoice["id"])
        w.deliver_pending()
    sub = w.subscription(account)
    assert (sub.status, sub.failed_attempts) == ("active", 0)
    assert w.balance(account) == TRIAL + 3000
    paid = w.invoices(account)[-1]
    assert (paid.kind, paid.status, paid.card_brand) == ("renewal", "paid", "mastercard")


def test_retries_running_out_end_the_plan_and_expire_its_credits(world):
    w = world
    account = w.sign_up("gone@example.com")
    sub_id = w.checkout(account, "starter")
    w.deliver_pending()
    w.standin.set_card(w.standin.subscriptions[sub_id]["customer"], "declined")
    with clock.pinned(datetime(2026, 2, 28, 12, 0, tzinfo=UTC)):
        w.standin.renew(sub_id)
    with clock.pinned(datetime(2026, 3, 5, 12, 0, tzinfo=UTC)):
        w.standin.end_period(sub_id)  # Stripe gives up and cancels
        w.deliver_pending()
    sub = w.subscription(account)
    assert sub.status == "ended"
    assert w.balance(account) == TRIAL


# ------------------------------------------------------------------ plan changes (user flows)


def _active(w, email, plan):
    account = w.sign_up(email)
    sub_id = w.checkout(account, plan)
    w.deliver_pending()
    return account, sub_id


def test_upgrade_charges_the_difference_and_grants_credits_only_after_payment(both_world):
    w = both_world
    account, sub_id = _active(w, "up@example.com", "starter")
    with clock.pinned(datetime(2026, 2, 10, 8, 0, tzinfo=UTC)):
        with stripe_webhooks.read_session(w.engine) as s:
            preview = subscriptions.preview_change(s, account, "pro")
        assert (preview.kind, preview.charge_cents, preview.credits_added) == (
            "upgrade",
            2000,
            2200,
        )
        outcome = stripe_webhooks.change_plan(
            w.engine, w.gateway, account, "pro", expected_preview=preview
        )
    assert outcome.ok and outcome.credits_added == 2200 and outcome.amount_cents == 2000
    charged = [i for i in w.standin.invoices.values() if i["billing_reason"] == "manual"]
    assert [(i["status"], i["amount_paid"]) for i in charged] == [("paid", 2000)]
    sub = w.subscription(account)
    assert sub.plan_key == "pro"
    assert sub.current_period_end.replace(tzinfo=UTC) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert w.balance(account) == TRIAL + 800 + 2200
    assert w.entries(account)[-1] == (ActionType.PLAN_CHANGE, 2200)
    upgrade = w.invoices(account)[-1]
    assert (upgrade.kind, upgrade.status, upgrade.amount_cents) == ("upgrade", "paid", 2000)
    # The webhooks that follow change nothing.
    before = w.state(account)
    assert all(o.status_code == 200 for o in w.deliver_pending())
    assert w.state(account) == before


def test_upgrade_credits_wait_for_the_payment_even_via_webhooks(world):
    """The plan and credits change only with the paid invoice: a subscription
    update seen before it (or without it) grants nothing."""
    w = world
    account, sub_id = _active(w, "wait@example.com", "starter")
    w.gateway.upgrade(sub_id, "studio", idempotency_key="u1")
    events = w.standin.take_events()
    # Before any delivery nothing changed locally.
    assert w.balance(account) == TRIAL + 800
    updated = [e for e in events if e.type == "customer.subscription.updated"]
    w.deliver(updated)
    assert w.subscription(account).plan_key == "studio"
    assert w.balance(account) == TRIAL + 9000
    assert w.invoices(account)[-1].amount_cents == 7000


def test_failed_upgrade_payment_changes_nothing_but_the_failed_payment_row(world):
    w = world
    account, sub_id = _active(w, "poor@example.com", "starter")
    w.standin.set_card(w.standin.subscriptions[sub_id]["customer"], "insufficient_funds")
    before = w.state(account)
    outcome = stripe_webhooks.change_plan(w.engine, w.gateway, account, "pro")
    assert not outcome.ok and outcome.message == "Your card has insufficient funds."
    w.deliver_pending()
    after = w.state(account)
    assert after[0] == before[0] and after[1:3] == before[1:3]  # plan, balance, ledger
    [failed] = [i for i in w.invoices(account) if i.status == "failed"]
    assert (failed.kind, failed.amount_cents, failed.failure_code) == (
        "upgrade",
        2000,
        "insufficient_funds",
    )
    assert w.gateway.retrieve_subscription(sub_id).plan_key == "starter"


def test_two_upgrade_confirmations_charge_once(world):
    w = world
    account, sub_id = _active(w, "twice@example.com", "starter")
    with stripe_webhooks.read_session(w.engine) as s:
        preview = subscriptions.preview_change(s, account, "pro")
    first = stripe_webhooks.change_plan(
        w.engine, w.gateway, account, "pro", expected_preview=preview
    )
    assert first.ok
    with pytest.raises(subscriptions.SubscriptionError):
        stripe_webhooks.change_plan(w.engine, w.gateway, account, "pro", expected_preview=preview)
    paid = [
        i
        for i in w.standin.invoices.values()
        if i["billing_reason"] == "manual" and i["status"] == "paid"
    ]
    assert len(paid) == 1
    assert w.balance(account) == TRIAL + 3000


def test_downgrade_burns_plan_credits_and_starts_a_new_period_today(world):
    w = world
    account, sub_id = _active(w, "down@example.com", "studio")
    today = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    with clock.pinned(today):
        outcome = stripe_webhooks.change_plan(w.engine, w.gateway, account, "starter")
    assert outcome.ok and outcome.credits_burned == 9000 and outcome.credits_added == 800
    sub = w.subscription(account)
    assert (sub.plan_key, sub.anchor_day) == ("starter", 10)
    assert sub.current_period_start.replace(tzinfo=UTC) == today
    assert sub.current_period_end.replace(tzinfo=UTC) == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert w.entries(account)[-2:] == [
        (ActionType.PLAN_CHANGE, -9000),
        (ActionType.SUBSCRIPTION_CREDITS, 800),
    ]
    assert w.balance(account) == TRIAL + 800
    downgrade = w.invoices(account)[-1]
    assert (downgrade.kind, downgrade.status, downgrade.amount_cents) == ("downgrade", "paid", 1000)
    before = w.state(account)
    w.deliver_pending()
    assert w.state(account) == before


def test_declined_downgrade_changes_nothing_but_the_failed_payment_row(world):
    w = world
    account, sub_id = _active(w, "nodown@example.com", "pro")
    w.standin.set_card(w.standin.subscriptions[sub_id]["customer"], "expired_card")
    before = w.state(account)
    outcome = stripe_webhooks.change_plan(w.engine, w.gateway, account, "starter")
    assert not outcome.ok and outcome.failure_code == "expired_card"
    w.deliver_pending()
    after = w.state(account)
    assert after[0] == before[0] and after[1:3] == before[1:3]
    assert [(i.kind, i.status) for i in w.invoices(account)] == [
        ("activation", "paid"),
        ("downgrade", "failed"),
    ]


def test_cancel_keeps_the_plan_until_the_period_end_then_resume_or_end(world):
    w = world
    account, sub_id = _active(w, "cancel@example.com", "pro")
    outcome = stripe_webhooks.cancel(w.engine, w.gateway, account)
    assert outcome.ok and "Feb 28, 2026" in outcome.message
    assert w.standin.subscriptions[sub_id]["cancel_at_period_end"] is True
    sub = w.subscription(account)
    assert (sub.status, sub.cancel_at_period_end, sub.plan_key) == ("active", True, "pro")
    assert w.balance(account) == TRIAL + 3000

    stripe_webhooks.resume(w.engine, w.gateway, account)
    assert w.subscription(account).cancel_at_period_end is False
    assert w.standin.subscriptions[sub_id]["cancel_at_period_end"] is False

    stripe_webhooks.cancel(w.engine, w.gateway, account)  # a second cancel must act again
    assert w.standin.subscriptions[sub_id]["cancel_at_period_end"] is True
    w.deliver_pending()
    with clock.pinned(datetime(2026, 2, 28, 12, 0, tzinfo=UTC)):
        w.standin.renew(sub_id)  # the period is over: Stripe ends it
        w.deliver_pending()
    assert w.subscription(account).status == "ended"
    assert w.entries(account)[-1] == (ActionType.EXPIRY, -3000)
    assert w.balance(account) == TRIAL


def test_success_page_sync_activates_without_waiting_for_webhooks(world):
    w = world
    account = w.sign_up("fast@example.com")
    session = w.open_checkout(account, "pro")
    assert (
        stripe_webhooks.sync_checkout_session(w.engine, w.gateway, session.id) is None
    )  # not paid yet
    w.standin.complete_checkout(session.id, "visa")
    report = stripe_webhooks.sync_checkout_session(w.engine, w.gateway, session.id)
    assert report.note.startswith("activation")
    assert w.subscription(account).plan_key == "pro"
    before = w.state(account)
    w.deliver_pending()
    assert w.state(account) == before


def test_start_checkout_refuses_an_account_that_already_has_a_plan(world):
    w = world
    account, _ = _active(w, "has@example.com", "starter")
    with pytest.raises(subscriptions.AlreadySubscribed):
        stripe_webhooks.start_checkout(
            w.engine, w.gateway, account, "pro", success_url="u", cancel_url="u"
        )
    with pytest.raises(subscriptions.UnknownPlan):
        stripe_webhooks.start_checkout(
            w.engine, w.gateway, account, "platinum", success_url="u", cancel_url="u"
        )


def test_a_crash_between_payment_and_price_swap_is_finished_by_invoice_paid(world, monkeypatch):
    w = world
    account, sub_id = _active(w, "crash@example.com", "starter")
    real_complete = type(w.gateway).complete_upgrade

    def crash(self, invoice_id):
        raise StripeGatewayError("We could not reach Stripe.")

    monkeypatch.setattr(type(w.gateway), "complete_upgrade", crash)
    with pytest.raises(StripeGatewayError):
        w.gateway.upgrade(sub_id, "pro", idempotency_key="crashy")
    monkeypatch.setattr(type(w.gateway), "complete_upgrade", real_complete)
    assert w.gateway.retrieve_subscription(sub_id).plan_key == "starter"  # paid, not swapped
    w.deliver(w.standin.take_events("invoice.paid"))
    assert w.gateway.retrieve_subscription(sub_id).plan_key == "pro"
    assert w.subscription(account).plan_key == "pro"
    assert w.balance(account) == TRIAL + 3000
    swaps = w.standin.requests_to("POST", f"/v1/subscriptions/{sub_id}")
    assert len(swaps) == 1 and swaps[0].params["proration_behavior"] == "none"


def test_a_late_resend_of_an_old_upgrade_invoice_does_not_swap_the_price_again(world):
    w = world
    account, sub_id = _active(w, "resend@example.com", "starter")
    up = stripe_webhooks.change_plan(w.engine, w.gateway, account, "pro")
    with clock.pinned(datetime(2026, 2, 10, 9, 0, tzinfo=UTC)):
        stripe_webhooks.change_plan(w.engine, w.gateway, account, "starter")
    w.deliver_pending()
    before = w.state(account)
    w.standin._idempotent.clear()  # Stripe forgets idempotency keys after 24 hours
    upgrade_invoice = next(
        i for i in w.standin.invoices.values() if i["billing_reason"] == "manual"
    )
    resent = w.standin.make_event("invoice.paid", w.standin._render_invoice(upgrade_invoice["id"]))
    assert w.processor.process(resent.payload.encode(), resent.signature).status_code == 200
    assert up.ok and w.gateway.retrieve_subscription(sub_id).plan_key == "starter"
    assert w.state(account) == before


def test_a_second_paid_checkout_for_the_same_account_is_not_activated(world):
    """Two checkout tabs, both paid: the account keeps one plan; the event is
    processed (not failed forever) and the note names the refund to make."""
    w = world
    account = w.sign_up("tabs@example.com")
    first = w.open_checkout(account, "starter")
    second = w.open_checkout(account, "pro")
    w.standin.complete_checkout(first.id)
    w.standin.complete_checkout(second.id)
    outcomes = w.deliver_pending()
    assert all(o.status_code == 200 for o in outcomes)
    sub = w.subscription(account)
    assert (sub.plan_key, sub.gateway_subscription_id) == (
        "starter",
        w.standin.sessions[first.id]["subscription"],
    )
    assert w.balance(account) == TRIAL + 800
    assert len(w.invoices(account)) == 1
    second_sub = w.standin.sessions[second.id]["subscription"]
    problems = {e.error for e in w.events() if e.error}
    assert len(problems) == 1 and f"{second_sub} NOT activated" in problems.pop()


def test_the_same_event_delivered_twice_at_once_is_applied_once(both_world):
    import threading

    w = both_world
    account = w.sign_up("race@example.com")
    w.checkout(account, "pro")
    [event] = w.standin.take_events("invoice.paid")
    outcomes = []
    barrier = threading.Barrier(2)

    def deliver():
        barrier.wait()
        with clock.pinned(T0):
            outcomes.extend(w.deliver([event]))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.outcome for o in outcomes) == ["duplicate", "processed"]
    assert all(o.status_code == 200 for o in outcomes)
    assert w.balance(account) == TRIAL + 3000
    assert len(w.invoices(account)) == 1


def test_prompt_webhooks_racing_the_users_own_request_apply_each_change_once(world):
    """With Stripe delivering each event the moment it happens, the webhooks
    reach the database before the user's request does: same result."""
    w = world
    w.standin.on_event = lambda e: w.processor.process(e.payload.encode(), e.signature)
    account = w.sign_up("prompt@example.com")
    w.checkout(account, "starter")  # activated by the webhooks alone
    assert w.subscription(account).plan_key == "starter"
    up = stripe_webhooks.change_plan(w.engine, w.gateway, account, "studio")
    assert up.ok and up.credits_added == 8200 and up.amount_cents == 7000
    with clock.pinned(datetime(2026, 2, 3, 12, 0, tzinfo=UTC)):
        down = stripe_webhooks.change_plan(w.engine, w.gateway, account, "pro")
    assert down.ok and down.credits_burned == 800 + 8200 and down.credits_added == 3000
    assert w.balance(account) == TRIAL + 3000
    assert [(i.kind, i.amount_cents) for i in w.invoices(account)] == [
        ("activation", 1000),
        ("upgrade", 7000),
        ("downgrade", 3000),
    ]
    assert all(e.outcome in ("processed", "ignored") for e in w.events())


def test_stripe_prices_that_differ_from_the_catalog_charge_nothing(world):
    w = world
    account, sub_id = _active(w, "mismatch@example.com", "starter")
    w.standin.prices[w.gateway.price_id("pro")]["unit_amount"] = 3500  # misconfigured in Stripe
    before = w.state(account)
    with pytest.raises(subscriptions.SubscriptionError, match="Nothing was charged"):
        stripe_webhooks.change_plan(w.engine, w.gateway, account, "pro")
    assert w.standin.requests_to("POST", "/v1/invoices") == []
    assert w.state(account) == before


def test_cancelling_a_past_due_plan_ends_it_now(world):
    w = world
    account, sub_id = _active(w, "pastdue@example.com", "pro")
    w.standin.set_card(w.standin.subscriptions[sub_id]["customer"], "declined")
    with clock.pinned(datetime(2026, 2, 28, 12, 0, tzinfo=UTC)):
        w.standin.renew(sub_id)
        w.deliver_pending()
        assert w.subscription(account).status == "past_due"
        outcome = stripe_webhooks.cancel(w.engine, w.gateway, account)
    assert outcome.action == "end"
    [delete] = w.standin.requests_to("DELETE", f"/v1/subscriptions/{sub_id}")
    assert delete.idempotency_key.startswith("wr:cancel:")
    assert w.standin.subscriptions[sub_id]["status"] == "canceled"
    assert w.subscription(account).status == "ended" and w.balance(account) == TRIAL


def test_stripe_declines_take_no_invoice_number_so_paid_numbers_stay_gapless(both_world):
    """Through Stripe (webhooks) too: a declined upgrade and a declined renewal
    between payments leave the paid invoices numbered 0001, 0002, 0003."""
    w = both_world
    account, sub_id = _active(w, "gapless@example.com", "starter")  # 0001
    customer = w.standin.subscriptions[sub_id]["customer"]
    w.standin.set_card(customer, "insufficient_funds")
    assert not stripe_webhooks.change_plan(w.engine, w.gateway, account, "pro").ok  # declined
    w.deliver_pending()
    w.standin.set_card(customer, "visa")
    assert stripe_webhooks.change_plan(w.engine, w.gateway, account, "pro").ok  # 0002
    w.deliver_pending()
    w.standin.set_card(customer, "insufficient_funds")
    with clock.pinned(datetime(2026, 2, 28, 12, 0, tzinfo=UTC)):
        invoice = w.standin.renew(sub_id)  # declined renewal
        w.deliver_pending()
    w.standin.set_card(customer, "visa")
    with clock.pinned(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)):
        w.standin.retry_invoice(invoice["id"])  # 0003
        w.deliver_pending()
    rows = w.invoices(account)
    assert [r.status for r in rows].count("failed") == 2
    paid = [r for r in rows if r.status == "paid"]
    assert [r.number for r in paid] == [f"WR-{account}-{k:04d}" for k in (1, 2, 3)]
    assert all(r.number is None and r.seq is None for r in rows if r.status == "failed")
