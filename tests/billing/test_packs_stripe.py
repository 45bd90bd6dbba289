"""Credit packs through Stripe Checkout (mode payment) against the stand-in:
credited from the webhook exactly once, whatever the order and the number of
deliveries, and never from a forged or mismatched session."""

from __future__ import annotations

import itertools
import json
import threading

import pytest

from tests.support.fakes.stripe_standin import StripeStandinError
from tests.support.stripe_world import T0, make_world
from workroom_app.billing import clock, stripe_webhooks
from workroom_app.billing.payments.stripe import META_PACK_CREDITS
from workroom_app.billing.subscriptions import SubscriptionError
from workroom_app.models import ActionType

TRIAL = 50


@pytest.fixture
def world(engine):
    with clock.pinned(T0):
        yield make_world(engine)


def start(w, account_id, pack_key="credits_500"):
    return stripe_webhooks.start_pack_checkout(
        w.engine,
        w.gateway,
        account_id,
        pack_key,
        success_url="https://app.test/credits?checkout_session={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.test/credits",
    )


def pay(w, account_id, pack_key="credits_500", card="visa"):
    session = start(w, account_id, pack_key)
    w.standin.complete_payment_checkout(session.id, card)
    return session


def test_the_session_is_payment_mode_at_the_catalog_price(world):
    w = world
    acct = w.sign_up("ada@example.com")
    session = start(w, acct, "credits_2000")
    [request] = w.standin.requests_to("POST", "/v1/checkout/sessions")
    assert request.params["mode"] == "payment"
    assert request.params["line_items"][0]["price_data"]["unit_amount"] == "2000"
    assert request.idempotency_key
    assert session.amount_total == 2000 and session.url


def test_a_paid_pack_is_credited_from_the_webhook_with_an_invoice_and_receipt(world):
    w = world
    acct = w.sign_up("ada@example.com")
    pay(w, acct)
    assert w.balance(acct) == TRIAL  # nothing until Stripe says so
    outcomes = w.deliver_pending()
    assert {o.status_code for o in outcomes} == {200}
    assert w.balance(acct) == TRIAL + 500
    assert w.entries(acct)[-1] == (ActionType.CREDIT_PACK.value, 500)
    [inv] = w.invoices(acct)
    assert (inv.kind, inv.status, inv.amount_cents, inv.gateway, inv.card_last4) == (
        "pack",
        "paid",
        600,
        "stripe",
        "4242",
    )


def test_duplicated_and_reordered_deliveries_credit_exactly_once(world):
    w = world
    acct = w.sign_up("ada@example.com")
    pay(w, acct)
    events = w.standin.take_events()
    assert "checkout.session.completed" in {e.type for e in events}
    seen = set()
    for order in itertools.islice(itertools.permutations(events), 6):
        for event in order + order:  # every event twice, in this order
            outcome = w.deliver([event])[0]
            assert outcome.status_code == 200
            seen.add(outcome.outcome)
        assert w.balance(acct) == TRIAL + 500
    assert "duplicate" in seen
    assert len(w.invoices(acct)) == 1


def test_the_same_completed_event_redelivered_under_new_ids_credits_once(world):
    """Stripe may also send a fresh event (new id) about the same session,
    e.g. after a resend from the dashboard: the session id is the key."""
    w = world
    acct = w.sign_up("ada@example.com")
    session = pay(w, acct)
    w.deliver_pending()
    again = w.standin.make_event(
        "checkout.session.completed", w.standin._public_session(w.standin.sessions[session.id])
    )
    assert w.deliver([again])[0].outcome == "processed"
    assert w.balance(acct) == TRIAL + 500 and len(w.invoices(acct)) == 1


def test_the_success_page_sync_and_the_webhook_credit_once(world):
    w = world
    acct = w.sign_up("ada@example.com")
    session = pay(w, acct)
    assert stripe_webhooks.sync_pack_checkout(w.engine, w.gateway, session.id, acct) is True
    assert w.balance(acct) == TRIAL + 500
    w.deliver_pending()
    assert stripe_webhooks.sync_pack_checkout(w.engine, w.gateway, session.id, acct) is True
    assert w.balance(acct) == TRIAL + 500 and len(w.invoices(acct)) == 1


def test_concurrent_deliveries_credit_once(world):
    w = world
    acct = w.sign_up("ada@example.com")
    session = pay(w, acct)
    completed = [e for e in w.standin.take_events() if e.type == "checkout.session.completed"]
    fresh = [
        w.standin.make_event(
            "checkout.session.completed", w.standin._public_session(w.standin.sessions[session.id])
        )
        for _ in range(3)
    ]
    barrier = threading.Barrier(8)
    errors = []

    def run(event):
        barrier.wait()
        try:
            outcome = w.deliver([event])[0]
            if outcome.status_code == 500:  # a lost race is retried by Stripe
                w.deliver([event])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in (completed * 5 + fresh)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert w.balance(acct) == TRIAL + 500 and len(w.invoices(acct)) == 1


def test_a_double_click_opens_one_session(world):
    w = world
    acct = w.sign_up("ada@example.com")
    first, second = start(w, acct), start(w, acct)
    assert first.id == second.id


def test_a_declined_card_credits_nothing(world):
    w = world
    acct = w.sign_up("ada@example.com")
    session = start(w, acct)
    with pytest.raises(StripeStandinError):
        w.standin.complete_payment_checkout(session.id, "insufficient_funds")
    w.deliver_pending()
    assert w.balance(acct) == TRIAL and w.invoices(acct) == []
    # The customer tries another card on the same page.
    w.standin.complete_payment_checkout(session.id, "visa")
    w.deliver_pending()
    assert w.balance(acct) == TRIAL + 500


def test_a_session_whose_amount_differs_from_what_was_sold_is_not_credited(world):
    w = world
    acct = w.sign_up("ada@example.com")
    session = start(w, acct)
    # Someone edits what the session claims to sell (e.g. metadata changed in the dashboard).
    w.standin.sessions[session.id]["metadata"][META_PACK_CREDITS] = "6000"
    w.standin.sessions[session.id]["amount_total"] = 1
    w.standin.complete_payment_checkout(session.id, "visa")
    w.deliver_pending()
    assert w.balance(acct) == TRIAL and w.invoices(acct) == []
    notes = [e.error for e in w.events() if e.type == "checkout.session.completed"]
    assert notes and "refund" in notes[0]


def test_another_accounts_session_is_not_synced_for_me(world):
    w = world
    ada, bob = w.sign_up("ada@example.com"), w.sign_up("bob@example.com")
    session = pay(w, ada)
    assert stripe_webhooks.sync_pack_checkout(w.engine, w.gateway, session.id, bob) is False
    assert w.balance(bob) == TRIAL and w.balance(ada) == TRIAL
    for bad in ("", "sub_1", "cs_" + "x" * 300, None, 5):
        with pytest.raises(SubscriptionError):
            stripe_webhooks.sync_pack_checkout(w.engine, w.gateway, bad, bob)


def test_a_forged_event_body_is_not_trusted(world):
    """The payload claims 6,000 credits; the handler re-reads the session from Stripe."""
    w = world
    acct = w.sign_up("ada@example.com")
    session = pay(w, acct)
    w.standin.take_events()
    body = w.standin._public_session(w.standin.sessions[session.id])
    body = json.loads(json.dumps(body))
    body["metadata"][META_PACK_CREDITS] = "6000"
    body["amount_total"] = 5000
    w.deliver([w.standin.make_event("checkout.session.completed", body)])
    assert w.balance(acct) == TRIAL + 500
