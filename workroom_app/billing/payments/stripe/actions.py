"""What a user does with a Stripe plan or pack: open Checkout, come back from it, change
plan, cancel or resume auto-renewal.

Each asks Stripe to act, then applies what Stripe now says through the same
`reconcile_report` the webhooks use (sync.py), so the page shows the result at once and the
webhooks that follow change nothing. The pages reach these through billing/ (the
subscription engine's gateway dispatch and billing/pack_checkout.py), never directly."""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy.engine import Engine
from sqlmodel import Session

from workroom_app import db
from workroom_app.billing import formatting, packs, subscriptions
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.stripe.errors import StripeGatewayError
from workroom_app.billing.payments.stripe.gateway import StripeGateway
from workroom_app.billing.payments.stripe.sync import (
    Nothing,
    ReconcileReport,
    StripeState,
    apply_pack_purchase,
    fetch_checkout,
    fetch_pack_purchase,
    fetch_state,
    reconcile_report,
    sync_subscription,
)
from workroom_app.billing.payments.stripe.views import CheckoutSessionView
from workroom_app.billing.subscriptions import CardForm, PaymentFacts, SubscribePreview
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, Subscription, SubscriptionStatus


def sync_checkout_session(
    engine: Engine, gateway: StripeGateway, checkout_session_id: str
) -> ReconcileReport | None:
    """For the page Checkout's success_url returns to: activate without waiting
    for the webhook. None while the session is not paid."""
    if not isinstance(checkout_session_id, str) or not checkout_session_id.startswith("cs_"):
        raise subscriptions.SubscriptionError("That checkout session does not exist.")
    state = fetch_checkout(gateway, checkout_session_id)
    if not isinstance(state, StripeState):  # not paid yet (or a pack: credited on /credits)
        return None
    with write_session(engine) as session:
        return reconcile_report(session, state)


def start_checkout(
    engine: Engine,
    gateway: StripeGateway,
    account_id: int,
    plan_key: str,
    *,
    success_url: str,
    cancel_url: str,
) -> CheckoutSessionView:
    """A Checkout Session for `plan_key` (the page then redirects to its url).

    The idempotency key is the engine's subscribe key, derived from the
    account's state: a double click gets the same session."""
    with read_session(engine) as session:
        preview = subscriptions.preview_subscribe(session, account_id, plan_key)
        account = session.get(Account, account_id)
    return gateway.create_checkout_session(
        account, preview.plan_key, success_url, cancel_url, idempotency_key=preview.idempotency_key
    )


def start_pack_checkout(
    engine: Engine,
    gateway: StripeGateway,
    account_id: int,
    pack_key: object,
    *,
    success_url: str,
    cancel_url: str,
    expected_preview: packs.PackPreview | None = None,
) -> CheckoutSessionView:
    """A Checkout Session (mode payment) for a credit pack. Its idempotency key
    is the purchase key the user was shown: a double click gets one session."""
    with read_session(engine) as session:
        preview = packs.preview(session, account_id, pack_key)
        account = session.get(Account, account_id)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise subscriptions.PreviewOutdated(
            "The price of this pack changed since you saw it. Nothing was charged; please review it again."
        )
    pack = packs.check_pack(preview.pack_key)
    return gateway.create_pack_checkout_session(
        account,
        pack,
        success_url,
        cancel_url,
        currency=preview.currency,
        idempotency_key=preview.idempotency_key,
    )


def sync_pack_checkout(
    engine: Engine, gateway: StripeGateway, checkout_session_id: object, account_id: int
) -> bool:
    """For the page a pack's Checkout returns to: credit it without waiting for
    the webhook. True when the session is a paid pack of this account (credited
    now or before)."""
    if (
        not isinstance(checkout_session_id, str)
        or not checkout_session_id.startswith("cs_")
        or len(checkout_session_id) > 255
    ):
        raise subscriptions.SubscriptionError("That checkout session does not exist.")
    state = fetch_pack_purchase(gateway, checkout_session_id)
    if isinstance(state, Nothing) or state.payment.account_id != account_id:
        return False
    with write_session(engine) as session:
        return apply_pack_purchase(session, state) is None


def _stripe_subscription(session: Session, account_id: int) -> tuple[Subscription, str]:
    """The account's live Stripe subscription and its Stripe id."""
    sub = subscriptions.live_subscription(session, account_id)
    if sub is None:
        raise subscriptions.NoSubscription("You're on Free. Subscribe to a plan first.")
    if sub.gateway != "stripe" or not sub.gateway_subscription_id:
        raise subscriptions.SubscriptionError("This plan is not billed through Stripe.")
    return sub, sub.gateway_subscription_id


def _get(session: Session, subscription_id: int | None) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise subscriptions.NoSubscription("No such subscription.")
    return sub


def change_plan(
    engine: Engine,
    gateway: StripeGateway,
    account_id: int,
    new_plan_key: str,
    *,
    expected_preview: subscriptions.ChangePreview | None = None,
) -> subscriptions.Outcome:
    """Upgrade or downgrade a Stripe subscription (what the user confirmed).

    The preview is the engine's own (same numbers as the local gateway); its
    idempotency key makes two clicks one Stripe charge."""
    with read_session(engine) as session:
        preview = subscriptions.preview_change(session, account_id, new_plan_key)
        sub, stripe_id = _stripe_subscription(session, account_id)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise subscriptions.PreviewOutdated(
            "Your plan or balance changed since you reviewed this change. Nothing was charged; "
            "please review it again."
        )
    try:
        change = gateway.upgrade if preview.kind == subscriptions.UPGRADE else gateway.downgrade
        result = change(
            stripe_id,
            preview.to_plan_key,
            idempotency_key=preview.idempotency_key,
            expected_amount_cents=preview.charge_cents,
        )
    except StripeGatewayError as exc:
        raise subscriptions.SubscriptionError(str(exc)) from None
    state = fetch_state(gateway, stripe_id)
    with write_session(engine) as session:
        report = reconcile_report(session, state)
        if result.requires_action and result.invoice is not None:
            # 3-D Secure: the change happens once the customer confirms on Stripe's page.
            # It builds on this package: a top-level import would be a cycle.
            from workroom_app.billing import stripe_payments  # noqa: PLC0415

            return stripe_payments.pending_outcome(session, result.invoice, preview.kind)
        if not result.ok:
            local = _get(session, sub.id)
            facts = PaymentFacts(
                ok=False,
                amount_cents=result.amount_cents,
                idempotency_key=(
                    f"stripe:{result.invoice.id}:failed:{result.invoice.attempt_count}"
                    if result.invoice is not None
                    else f"stripe:declined:{preview.idempotency_key}"
                ),
                currency=preview.currency,
                gateway="stripe",
                gateway_ref=result.invoice.id if result.invoice is not None else None,
                card_brand=result.invoice.card_brand if result.invoice is not None else None,
                card_last4=result.invoice.card_last4 if result.invoice is not None else None,
                failure_reason=result.failure_reason,
                failure_code=result.failure_code,
            )
            return subscriptions.record_failed_attempt(
                session,
                local.account_id,
                kind=preview.kind,
                payment=facts,
                plan_key=preview.to_plan_key,
                subscription_id=local.id,
                period_start=local.current_period_start,
                period_end=local.current_period_end,
                description=f"{preview.kind.capitalize()} from {preview.from_plan_name} to {preview.to_plan_name}",
            )
    outcome = report.outcomes.get(result.invoice.id) if result.invoice is not None else None
    if outcome is not None and not outcome.replayed:
        return outcome
    # A webhook got there first: the change is done; say what it did.
    return subscriptions.Outcome(
        ok=True,
        action=preview.kind,
        message=f"You're on {preview.to_plan_name}.",
        subscription_id=sub.id,
        plan_key=preview.to_plan_key,
        amount_cents=preview.charge_cents,
        credits_added=preview.credits_added,
        credits_burned=preview.credits_burned,
    )


def cancel(engine: Engine, gateway: StripeGateway, account_id: int) -> subscriptions.Outcome:
    """Stop auto-renewal in Stripe; the plan stays until the period end."""
    return _set_auto_renewal(engine, gateway, account_id, cancel=True)


def resume(engine: Engine, gateway: StripeGateway, account_id: int) -> subscriptions.Outcome:
    return _set_auto_renewal(engine, gateway, account_id, cancel=False)


def _set_auto_renewal(
    engine: Engine, gateway: StripeGateway, account_id: int, *, cancel: bool
) -> subscriptions.Outcome:
    with read_session(engine) as session:
        sub, stripe_id = _stripe_subscription(session, account_id)
    # A fresh key per request: cancel, resume, cancel again must each act
    # (a reused key would replay the first answer); retries inside the SDK
    # reuse it.
    key = f"{'cancel' if cancel else 'resume'}:{sub.id}:{uuid.uuid4().hex}"
    try:
        if cancel and sub.status == SubscriptionStatus.PAST_DUE:
            # Its paid period is already over: the plan ends now (as with the local gateway).
            gateway.cancel_now(stripe_id, idempotency_key=key)
            sync_subscription(engine, gateway, stripe_id)
            return subscriptions.Outcome(
                ok=True,
                action="end",
                message="Your plan has ended. You're on Free.",
                subscription_id=sub.id,
                plan_key=sub.plan_key,
            )
        if cancel:
            gateway.cancel_at_period_end(stripe_id, idempotency_key=key)
        else:
            gateway.resume(stripe_id, idempotency_key=key)
    except StripeGatewayError as exc:
        raise subscriptions.SubscriptionError(str(exc)) from None
    sync_subscription(engine, gateway, stripe_id)
    with read_session(engine) as session:
        fresh = _get(session, sub.id)
        plan = subscriptions.get_plan(fresh.plan_key)
        end = fresh.current_period_end
        end_text = formatting.format_date(end, formatting.account_zone(session, fresh.account_id))
    return subscriptions.Outcome(
        ok=True,
        action="cancel" if cancel else "resume",
        message=(
            f"Auto-renewal is off. {plan.name} and its credits stay until {end_text}; then you're on Free."
            if cancel
            else f"Auto-renewal is on. {plan.name} renews on {end_text}."
        ),
        subscription_id=sub.id,
        plan_key=fresh.plan_key,
    )


class StripeBilling:
    """Stripe as billing/gateway_dispatch.py sees it: Checkout and the Customer's card live on
    Stripe's pages; plan changes, cancel and resume are asked of Stripe, then synced."""

    # db.get_engine / payments.get_gateway are looked up at call time (tests swap them).
    name = "stripe"
    hosted_checkout = True
    cards_managed_here = False

    def subscribe(
        self, account_id: int, expected: SubscribePreview, card: CardForm | None
    ) -> subscriptions.Outcome:
        raise subscriptions.SubscriptionError("Stripe takes the card on its own checkout page.")

    def checkout_url(
        self, account_id: int, expected: SubscribePreview, *, success_url: str, cancel_url: str
    ) -> str:
        view = start_checkout(
            db.get_engine(),
            _gateway(),
            account_id,
            expected.plan_key,
            success_url=success_url,
            cancel_url=cancel_url,
        )
        if not view.url:
            raise subscriptions.SubscriptionError(
                "Stripe did not return a checkout page. Please try again."
            )
        return view.url

    def finish_checkout(self, checkout_session_id: str) -> None:
        sync_checkout_session(db.get_engine(), _gateway(), checkout_session_id)

    def swap(self, account_id: int, expected: subscriptions.ChangePreview) -> subscriptions.Outcome:
        return change_plan(
            db.get_engine(), _gateway(), account_id, expected.to_plan_key, expected_preview=expected
        )

    def cancel(self, account_id: int) -> subscriptions.Outcome:
        return cancel(db.get_engine(), _gateway(), account_id)

    def pay_now(self, account_id: int) -> subscriptions.Outcome:
        # Off-session: invoices.pay on the open renewal (billing/stripe_payments.py).
        # It builds on this package: a top-level import would be a cycle.
        from workroom_app.billing import stripe_payments  # noqa: PLC0415

        return stripe_payments.pay_now(db.get_engine(), _gateway(), account_id)

    def resume(self, account_id: int) -> subscriptions.Outcome:
        return resume(db.get_engine(), _gateway(), account_id)

    def pack_checkout_url(
        self,
        account_id: int,
        expected: packs.PackPreview,
        *,
        success_url: str,
        cancel_url: str,
    ) -> str:
        view = start_pack_checkout(
            db.get_engine(),
            _gateway(),
            account_id,
            expected.pack_key,
            success_url=success_url,
            cancel_url=cancel_url,
            expected_preview=expected,
        )
        if not view.url:
            raise subscriptions.SubscriptionError(
                "Stripe did not return a checkout page. Please try again."
            )
        return view.url

    def finish_pack_checkout(self, account_id: int, checkout_session_id: str) -> bool:
        return sync_pack_checkout(db.get_engine(), _gateway(), checkout_session_id, account_id)


def _gateway() -> StripeGateway:
    # Through the registry (not StripeGateway()): one client per process, and tests swap it.
    return cast(StripeGateway, get_gateway("stripe"))


STRIPE = StripeBilling()
