"""POST /api/stripe/webhook through Starlette: raw body in, status code out."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.stripe_world import T0, TRIAL_CREDITS, make_world
from workroom_app.billing import clock
from workroom_app.http import STRIPE_ROUTES, stripe_routes
from workroom_app.http.stripe_routes import MAX_BODY_BYTES, WEBHOOK_PATH


@pytest.fixture
def http(sqlite_engine):
    with clock.pinned(T0):
        world = make_world(sqlite_engine)
        app = Starlette(routes=stripe_routes(lambda: world.processor))
        with TestClient(app) as client:
            yield world, client


def post(client, event, signature=None):
    return client.post(
        WEBHOOK_PATH,
        content=event.payload.encode(),
        headers={
            "Stripe-Signature": event.signature if signature is None else signature,
            "Content-Type": "application/json",
        },
    )


def test_the_route_is_a_post_on_the_documented_path():
    [route] = STRIPE_ROUTES
    assert route.path == "/api/stripe/webhook" and route.methods == {"POST"}


def test_signed_events_are_processed_and_activate_the_plan(http):
    world, client = http
    account = world.sign_up("http@example.com")
    world.checkout(account, "pro")
    responses = [post(client, e) for e in world.standin.take_events()]
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert {r.json()["outcome"] for r in responses} == {"processed", "ignored"}
    assert world.subscription(account).plan_key == "pro"
    assert world.balance(account) == TRIAL_CREDITS + 3000


def test_bad_signature_is_400_and_stores_nothing(http):
    world, client = http
    account = world.sign_up("bad@example.com")
    world.checkout(account)
    event = world.standin.take_events("checkout.session.completed")[0]
    assert post(client, event, signature="t=1,v1=00").status_code == 400
    no_header = client.post(WEBHOOK_PATH, content=event.payload.encode())
    assert no_header.status_code == 400 and "signature" in no_header.json()["error"].lower()
    # The body must be the exact bytes that were signed: re-serialised JSON fails.
    reformatted = client.post(
        WEBHOOK_PATH,
        content=event.payload.replace(", ", ",").encode(),
        headers={"Stripe-Signature": event.signature},
    )
    assert reformatted.status_code == 400
    assert world.events() == [] and world.subscription(account) is None


def test_duplicate_is_200_and_changes_nothing(http):
    world, client = http
    account = world.sign_up("dup@example.com")
    world.checkout(account)
    events = world.standin.take_events()
    for e in events:
        assert post(client, e).status_code == 200
    before = (world.state(account), len(world.events()))
    again = [post(client, e) for e in events]
    assert {(r.status_code, r.json()["outcome"]) for r in again} == {(200, "duplicate")}
    assert (world.state(account), len(world.events())) == before


def test_unknown_type_is_stored_and_ignored(http):
    world, client = http
    event = world.standin.make_event("payout.paid", {"id": "po_123", "object": "payout"})
    response = post(client, event)
    assert (response.status_code, response.json()["outcome"]) == (200, "ignored")
    [stored] = world.events()
    assert (stored.id, stored.type, stored.outcome, stored.payload) == (
        event.id,
        "payout.paid",
        "ignored",
        event.payload,
    )


def test_oversized_body_and_wrong_method_are_refused(http):
    world, client = http
    big = b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}"
    assert (
        client.post(WEBHOOK_PATH, content=big, headers={"Stripe-Signature": "t=1,v1=0"}).status_code
        == 413
    )
    assert client.get(WEBHOOK_PATH).status_code == 405
    assert world.events() == []


def test_unconfigured_stripe_answers_503_so_stripe_retries_later(sqlite_engine):
    from workroom_app.billing.payments.stripe import StripeGateway
    from workroom_app.settings import Settings

    app = Starlette(routes=stripe_routes(lambda: StripeGateway(Settings(stripe_secret_key=""))))
    with TestClient(app) as client:
        response = client.post(
            WEBHOOK_PATH, content=b"{}", headers={"Stripe-Signature": "t=1,v1=0"}
        )
    # The public answer names no configuration variable.
    assert response.status_code == 503 and "WORKROOM_" not in response.text
    assert response.json()["error"] == "Stripe webhooks are not enabled on this server."
