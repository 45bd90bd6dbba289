"""The Stripe gateway against the in-process stand-in: the real requests the SDK
builds (paths, form bodies, idempotency keys) and what they do to Stripe's state."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from tests.support.fakes.stripe_standin import StripeStandin, add_months
from tests.support.stripe_world import standin_and_gateway
from workroom_app.billing import clock
from workroom_app.billing.payments.stripe import (
    StripeGateway,
    StripeGatewayError,
    StripeNotConfigured,
)
from workroom_app.settings import Settings

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.fixture
def stripe_pair():
    with clock.pinned(T0):
        yield standin_and_gateway()


def subscribe(
    standin: StripeStandin, gateway: StripeGateway, plan: str = "starter", card: str = "visa"
):
    account = SimpleNamespace(id=42, email="ada@example.com")
    session = gateway.create_checkout_session(
        account,
        plan,
        "https://app.test/ok",
        "https://app.test/plans",
        idempotency_key=f"checkout-{plan}",
    )
    standin.complete_checkout(session.id, card)
    return gateway.retrieve_subscription(
        gateway.retrieve_checkout_session(session.id).subscription_id
    )


def test_gateway_refuses_to_start_without_keys_and_prices():
    with pytest.raises(StripeNotConfigured, match="WORKROOM_STRIPE_SECRET_KEY"):
        StripeGateway(Settings(stripe_secret_key=""))
    with pytest.raises(StripeNotConfigured, match="WORKROOM_STRIPE_PRICE_PRO"):
        StripeGateway(
            Settings(
                stripe_secret_key="sk_test_x", stripe_price_starter="p1", stripe_price_studio="p3"
            )
        )


def test_checkout_session_request_is_subscription_mode_with_account_and_idempotency_key(
    stripe_pair,
):
    standin, gateway = stripe_pair
    account = SimpleNamespace(id=42, email="ada@example.com")
    session = gateway.create_checkout_session(
        account, "pro", "https://app.test/ok", "https://app.test/plans", idempotency_key="op-1"
    )
    [request] = standin.requests_to("POST", "/v1/checkout/sessions")
    assert request.headers["Idempotency-Key"] == "wr:op-1:checkout"
    assert request.headers["Authorization"] == f"Bearer {standin.api_key}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "line_items[0][price]=" + gateway.price_id("pro") in request.body
    assert request.params == {
        "mode": "subscription",
        "line_items": [{"price": gateway.price_id("pro"), "quantity": "1"}],
        "success_url": "https://app.test/ok",
        "cancel_url": "https://app.test/plans",
        "client_reference_id": "42",
        "metadata": {"workroom_account_id": "42", "workroom_plan": "pro"},
        "subscription_data": {"metadata": {"workroom_account_id": "42", "workroom_plan": "pro"}},
        "customer_email": "ada@example.com",
    }
    assert session.url.startswith("https://checkout.stripe.com/")
    # The same operation again (a double click): Stripe answers with the same session.
    again = gateway.create_checkout_session(
        account, "pro", "https://app.test/ok", "https://app.test/plans", idempotency_key="op-1"
    )
    assert again.id == session.id and len(standin.sessions) == 1


def test_unknown_plan_is_refused_before_calling_stripe(stripe_pair):
    standin, gateway = stripe_pair
    with pytest.raises(StripeGatewayError, match="no paid plan called 'free'"):
        gateway.create_checkout_session(
            SimpleNamespace(id=1, email="a@b.c"), "free", "u", "u", idempotency_key="k"
        )
    assert standin.requests == []


def test_every_write_carries_an_idempotency_key_we_chose(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway)
    gateway.upgrade(sub.id, "pro", idempotency_key="up-1")
    gateway.downgrade(sub.id, "starter", idempotency_key="down-1")
    gateway.cancel_at_period_end(sub.id, idempotency_key="cancel-1")
    gateway.resume(sub.id, idempotency_key="resume-1")
    writes = [r for r in standin.requests if r.method in ("POST", "DELETE")]
    assert len(writes) >= 8
    for request in writes:
        # Ours ("wr:"), not the SDK's random default: a retry of the same
        # operation reuses it.
        assert request.idempotency_key and request.idempotency_key.startswith("wr:"), request.path


def test_subscription_view_reads_the_period_from_the_item_and_clamps_the_31st(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "starter")
    assert sub.status == "active" and sub.plan_key == "starter" and sub.price_cents == 1000
    assert sub.period_start == T0
    assert sub.period_end == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert sub.account_id == 42
    standin.renew(sub.id)
    standin.renew(sub.id)
    # Back to the 31st after the short month.
    assert gateway.retrieve_subscription(sub.id).period_end == datetime(
        2026, 4, 30, 12, 0, tzinfo=UTC
    )
    assert add_months(T0, 2) == datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def test_invoice_view_has_card_lines_and_subscription_from_parent(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "pro", card="amex")
    invoice = gateway.retrieve_invoice(sub.latest_invoice_id)
    assert invoice.paid and invoice.kind == "activation"
    assert invoice.subscription_id == sub.id
    assert (invoice.card_brand, invoice.card_last4) == ("amex", "0005")
    assert invoice.amount_paid == 3000 and [line.amount_cents for line in invoice.lines] == [3000]
    assert invoice.lines[0].price_id == gateway.price_id("pro")
    assert invoice.period_start == T0


def test_upgrade_charges_exactly_the_price_difference_then_swaps_without_proration(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "starter")
    result = gateway.upgrade(sub.id, "studio", idempotency_key="up-1")
    assert result.ok and result.amount_cents == 8000 - 1000
    assert result.invoice.paid and result.invoice.amount_paid == 7000
    assert [line.amount_cents for line in result.invoice.lines] == [7000]
    assert result.invoice.kind == "upgrade"
    assert result.invoice.subscription_id == sub.id
    [create] = standin.requests_to("POST", "/v1/invoices")
    assert create.params["pending_invoice_items_behavior"] == "exclude"
    assert create.params["subscription"] == sub.id
    [item] = standin.requests_to("POST", "/v1/invoiceitems")
    assert item.params["amount"] == "7000" and item.params["invoice"] == result.invoice.id
    [swap] = standin.requests_to("POST", f"/v1/subscriptions/{sub.id}")
    assert swap.params["proration_behavior"] == "none"
    assert swap.params["items"] == [{"id": sub.item_id, "price": gateway.price_id("studio")}]
    # The swap happens after the payment, never before.
    paths = [r.path for r in standin.requests if r.method == "POST"]
    assert paths.index(f"/v1/invoices/{result.invoice.id}/pay") < paths.index(
        f"/v1/subscriptions/{sub.id}"
    )
    after = gateway.retrieve_subscription(sub.id)
    assert after.plan_key == "studio"
    # The renewal date does not move; the next renewal is at the new price.
    assert (after.period_start, after.period_end) == (sub.period_start, sub.period_end)
    renewal = standin.renew(sub.id)
    assert renewal["amount_paid"] == 8000


def test_two_upgrade_requests_with_the_same_key_charge_once(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "starter")
    results, errors = [], []

    def click():
        try:
            results.append(gateway.upgrade(sub.id, "pro", idempotency_key="upgrade-click"))
        except StripeGatewayError as exc:  # the second may see the plan already swapped
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    paid = [
        i
        for i in standin.invoices.values()
        if i["billing_reason"] == "manual" and i["status"] == "paid"
    ]
    assert len(paid) == 1 and paid[0]["amount_paid"] == 2000
    assert len(standin.charges) == 2  # the activation and ONE upgrade charge
    assert results and all(r.invoice.id == paid[0]["id"] for r in results)


def test_failed_upgrade_payment_voids_the_invoice_and_keeps_the_plan(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "starter")
    standin.set_card(sub.customer_id, "insufficient_funds")
    result = gateway.upgrade(sub.id, "pro", idempotency_key="up-1")
    assert not result.ok
    assert result.failure_code == "insufficient_funds"
    assert result.failure_reason == "Your card has insufficient funds."
    assert result.invoice.status == "void"
    after = gateway.retrieve_subscription(sub.id)
    assert after.plan_key == "starter" and after.price_id == sub.price_id
    assert standin.requests_to("POST", f"/v1/subscriptions/{sub.id}") == []


def test_upgrade_to_a_lower_or_same_plan_is_refused(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "pro")
    for plan in ("pro", "starter"):
        with pytest.raises(StripeGatewayError, match="not an upgrade"):
            gateway.upgrade(sub.id, plan, idempotency_key=f"up-{plan}")
    assert standin.requests_to("POST", "/v1/invoices") == []


def test_downgrade_starts_a_new_period_now_at_the_lower_price(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "studio")
    later = datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
    with clock.pinned(later):
        result = gateway.downgrade(sub.id, "pro", idempotency_key="down-1")
    assert result.ok
    [update] = standin.requests_to("POST", f"/v1/subscriptions/{sub.id}")
    assert update.params["billing_cycle_anchor"] == "now"
    assert update.params["proration_behavior"] == "none"
    assert update.params["payment_behavior"] == "error_if_incomplete"
    assert update.params["items"] == [{"id": sub.item_id, "price": gateway.price_id("pro")}]
    assert result.subscription.plan_key == "pro"
    assert result.subscription.period_start == later
    assert result.subscription.period_end == datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    assert (
        result.invoice.paid
        and result.invoice.amount_paid == 3000
        and result.invoice.kind == "downgrade"
    )


def test_declined_downgrade_leaves_the_subscription_as_it_was(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway, "studio")
    standin.set_card(sub.customer_id, "expired_card")
    result = gateway.downgrade(sub.id, "starter", idempotency_key="down-1")
    assert not result.ok and result.failure_code == "expired_card"
    assert result.failure_reason == "Your card has expired."
    after = gateway.retrieve_subscription(sub.id)
    assert (after.plan_key, after.period_start, after.period_end) == (
        "studio",
        sub.period_start,
        sub.period_end,
    )


def test_cancel_at_period_end_and_resume(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway)
    assert gateway.cancel_at_period_end(sub.id, idempotency_key="c").cancel_at_period_end is True
    [request] = standin.requests_to("POST", f"/v1/subscriptions/{sub.id}")
    assert request.params == {"cancel_at_period_end": "true"}
    assert gateway.resume(sub.id, idempotency_key="r").cancel_at_period_end is False
    assert gateway.retrieve_subscription(sub.id).status == "active"


def test_plan_change_refused_while_past_due(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway)
    standin.set_card(sub.customer_id, "declined")
    standin.renew(sub.id)
    with pytest.raises(StripeGatewayError, match="update your card"):
        gateway.upgrade(sub.id, "pro", idempotency_key="u")


def test_stripe_idempotency_key_reused_with_other_parameters_is_an_error(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway)
    gateway.cancel_at_period_end(sub.id, idempotency_key="same")
    with pytest.raises(StripeGatewayError, match="same parameters"):
        # a different body under the same derived key
        gateway._call(
            gateway.client.v1.subscriptions.update,
            sub.id,
            {"cancel_at_period_end": False},
            {"idempotency_key": "wr:same:cancel"},
        )


def test_list_subscription_invoices_is_oldest_first(stripe_pair):
    standin, gateway = stripe_pair
    sub = subscribe(standin, gateway)
    standin.renew(sub.id)
    gateway.upgrade(sub.id, "pro", idempotency_key="u")
    kinds = [i.kind for i in gateway.list_subscription_invoices(sub.id)]
    assert kinds == ["activation", "renewal", "upgrade"]
