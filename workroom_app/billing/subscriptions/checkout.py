"""Checkout: subscribing to a paid plan (the verb for a gateway that charges directly)
and activating a plan some gateway has been paid for."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, func, select

from workroom_app.billing import alerts, clock, invoices, ledger, periods
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.gateway import PaymentGateway
from workroom_app.billing.periods import as_utc
from workroom_app.billing.subscriptions.card_storage import CardForm, card_to_charge, store_card
from workroom_app.billing.subscriptions.errors import (
    AlreadySubscribed,
    PreviewOutdated,
    SubscriptionError,
)
from workroom_app.billing.subscriptions.lookup import (
    _account,
    _check_account_id,
    _currency,
    _lock,
    _paid_plan,
    live_subscription,
)
from workroom_app.billing.subscriptions.payment_records import (
    ACTIVATION,
    Outcome,
    PaymentFacts,
    _card_details,
    _charge,
    _failed_count,
    _needs_confirmation,
    _period_label,
    _receipt,
    _replay,
    _write_invoice,
    record_failed_attempt,
)
from workroom_app.billing.subscriptions.previews import SubscribePreview
from workroom_app.models import ActionType, GrantSource, Subscription, SubscriptionStatus


def _subscribe_key(session: Session, account_id: int, plan_key: str) -> str:
    # Derived from the account's state: a double submit shares it (charged
    # once); a retry after a decline or after a plan ended gets a new one.
    n_subs = session.exec(select(func.count()).where(Subscription.account_id == account_id)).one()
    n_failed = _failed_count(session, account_id, ACTIVATION, None)
    return f"activation:{account_id}:{plan_key}:{n_subs}:{n_failed}"


def preview_subscribe(session: Session, account_id: int, plan_key: str) -> SubscribePreview:
    account_id = _check_account_id(account_id)
    plan = _paid_plan(plan_key)
    if live_subscription(session, account_id) is not None:
        raise AlreadySubscribed("You already have a plan. Upgrade or downgrade it instead.")
    now = clock.now()
    _, end, _ = periods.first_period(now)
    return SubscribePreview(
        account_id=account_id,
        plan_key=plan.key,
        plan_name=plan.name,
        charge_cents=plan.price_cents,
        currency=_currency(),
        credits_added=plan.monthly_credits,
        renewal_date=end.date(),
        idempotency_key=_subscribe_key(session, account_id, plan.key),
    )


def subscribe(
    session: Session,
    account_id: int,
    plan_key: str,
    *,
    card: CardForm | None = None,
    expected_preview: SubscribePreview | None = None,
    gateway: PaymentGateway | None = None,
) -> Outcome:
    """Checkout with a gateway that charges directly (local test mode).

    With `card`, that card is charged and, if the payment succeeds, saved as
    the card on file; without it the saved card is charged. The plan activates
    the moment the payment succeeds. Declined: a failed invoice, nothing else."""
    account_id = _check_account_id(account_id)
    plan = _paid_plan(plan_key)
    _account(session, account_id)
    gateway = gateway or get_gateway()
    _lock(session, account_id)
    if expected_preview is not None:
        if expected_preview.account_id != account_id or expected_preview.plan_key != plan.key:
            raise PreviewOutdated(
                "This confirmation is for a different plan. Please review it again."
            )
        done = invoices.find_by_key(session, expected_preview.idempotency_key)
        if done is not None:
            return _replay(done, ACTIVATION)
    preview = preview_subscribe(session, account_id, plan.key)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise PreviewOutdated(
            "The price or terms changed since you reviewed them. Nothing was charged; please review again."
        )
    key = preview.idempotency_key
    done = invoices.find_by_key(session, key)
    if done is not None:
        return _replay(done, ACTIVATION)

    now = clock.now()
    start, end, anchor = periods.first_period(now)
    card_on_file = card_to_charge(
        session,
        gateway,
        account_id,
        card,
        unsupported=SubscriptionError,
        no_card_message="Add a card to subscribe.",
    )
    payment = _charge(
        session,
        gateway,
        account_id,
        card_on_file,
        plan.price_cents,
        f"Workroom {plan.name} plan",
        key,
    )
    if payment.requires_action:
        return _needs_confirmation(
            session,
            account_id,
            ACTIVATION,
            payment,
            f"the {plan.name} plan",
            {"plan_key": plan.key, **_card_details(card_on_file, "always" if card else None)},
            "/subscription",
        )
    if not payment.ok:
        return record_failed_attempt(
            session,
            account_id,
            kind=ACTIVATION,
            payment=payment,
            plan_key=plan.key,
            period_start=start,
            period_end=end,
        )
    if card is not None:
        store_card(session, account_id, card_on_file, gateway=gateway.name)
    return activate_from_gateway(
        session,
        account_id,
        plan.key,
        period_start=start,
        period_end=end,
        payment=payment,
        anchor_day=anchor,
    )


def activate_from_gateway(
    session: Session,
    account_id: int,
    plan_key: str,
    *,
    period_start: datetime,
    period_end: datetime,
    payment: PaymentFacts,
    gateway_subscription_id: str | None = None,
    anchor_day: int | None = None,
) -> Outcome:
    """A paid checkout: the subscription starts, its monthly credits are granted
    at once (Subscription credits, expiring at the period end), a paid invoice
    and a receipt are written. Idempotent on payment.idempotency_key and on
    gateway_subscription_id."""
    account_id = _check_account_id(account_id)
    plan = _paid_plan(plan_key)
    if not payment.ok:
        raise SubscriptionError("A subscription activates only after a successful payment.")
    period_start, period_end = as_utc(period_start), as_utc(period_end)
    if period_end <= period_start:
        raise SubscriptionError("The billing period must end after it starts.")
    _lock(session, account_id)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, ACTIVATION)
    if gateway_subscription_id:
        same = session.exec(
            select(Subscription).where(
                Subscription.gateway_subscription_id == gateway_subscription_id
            )
        ).first()
        if same is not None:
            return Outcome(
                ok=True,
                action=ACTIVATION,
                message="This subscription is already active.",
                subscription_id=same.id,
                plan_key=same.plan_key,
                replayed=True,
            )
    if live_subscription(session, account_id) is not None:
        raise AlreadySubscribed("You already have a plan. Upgrade or downgrade it instead.")
    now = clock.now()
    sub = Subscription(
        account_id=account_id,
        plan_key=plan.key,
        status=SubscriptionStatus.ACTIVE.value,
        gateway=payment.gateway,
        gateway_subscription_id=gateway_subscription_id,
        anchor_day=anchor_day or period_start.day,
        current_period_start=period_start,
        current_period_end=period_end,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    session.flush()
    invoice, _ = _write_invoice(
        session,
        account_id,
        kind=ACTIVATION,
        payment=payment,
        lines=[
            LineItem(
                f"{plan.name} plan, {_period_label(period_start, period_end)}", payment.amount_cents
            )
        ],
        subscription_id=sub.id,
        plan_key=plan.key,
        period_start=period_start,
        period_end=period_end,
    )
    credits = 0
    if plan.monthly_credits > 0:
        ledger.grant(
            session,
            account_id,
            plan.monthly_credits,
            action_type=ActionType.SUBSCRIPTION_CREDITS,
            source=GrantSource.SUBSCRIPTION,
            idempotency_key=f"activation-credits:{sub.id}",
            expires_at=period_end,
            subscription_id=sub.id,
            reference_type="invoice",
            reference_id=str(invoice.id),
        )
        credits = plan.monthly_credits
    _receipt(session, invoice, plan.name)
    alerts.forget(account_id)  # the default low-balance threshold follows the plan
    return Outcome(
        ok=True,
        action=ACTIVATION,
        message=f"You're on {plan.name}. {credits:,} credits were added to your balance.",
        subscription_id=sub.id,
        plan_key=plan.key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=credits,
    )
