"""Upgrade and downgrade (PRODUCT_RULES §5): the preview, the verb that charges the
saved card, and applying a change some gateway has been paid for."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from workroom_app.billing import alerts, clock, formatting, invoices, ledger, periods
from workroom_app.billing.catalog import Plan
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.gateway import PaymentGateway
from workroom_app.billing.periods import as_utc
from workroom_app.billing.subscriptions.errors import (
    NoPaymentMethod,
    NoSubscription,
    PaymentPastDue,
    PreviewOutdated,
    RenewalInProgress,
    SamePlan,
    SubscriptionError,
)
from workroom_app.billing.subscriptions.lookup import (
    _account,
    _check_account_id,
    _currency,
    _fmt_date,
    _lock,
    _paid_plan,
    _reload,
    default_card,
    get_plan,
    live_subscription,
)
from workroom_app.billing.subscriptions.payment_records import (
    DOWNGRADE,
    UPGRADE,
    Outcome,
    PaymentFacts,
    _charge,
    _failed_count,
    _needs_confirmation,
    _period_label,
    _receipt,
    _replay,
    _write_invoice,
    record_failed_attempt,
)
from workroom_app.billing.subscriptions.previews import ChangePreview
from workroom_app.billing.subscriptions.renewal import _start_paid_period
from workroom_app.models import ActionType, GrantSource, Subscription, SubscriptionStatus


def _change_key(kind: str, sub: Subscription, to_key: str, n_failed: int) -> str:
    start = as_utc(sub.current_period_start).isoformat()
    return f"{kind}:{sub.id}:{sub.plan_key}->{to_key}:{start}:{n_failed}"


def _preview_change(
    session: Session, sub: Subscription, new_plan: Plan, now: datetime
) -> ChangePreview:
    current = get_plan(sub.plan_key)
    if new_plan.key == current.key:
        raise SamePlan(f"You're already on {current.name}.")
    if new_plan.rank == current.rank:
        raise SamePlan(f"{new_plan.name} is the same level as {current.name}.")
    balance = ledger.balance(session, sub.account_id)
    if new_plan.rank > current.rank:
        kind = UPGRADE
        charge = new_plan.price_cents - current.price_cents
        added = max(0, new_plan.monthly_credits - current.monthly_credits)
        burned = 0
        renewal = as_utc(sub.current_period_end).date()
    else:
        kind = DOWNGRADE
        charge = new_plan.price_cents
        added = new_plan.monthly_credits
        burned = ledger.subscription_credits_left(session, sub.id, now)
        _, end, _ = periods.first_period(now)
        renewal = end.date()
    if charge <= 0:
        raise SubscriptionError(
            f"{new_plan.name} does not cost more than {current.name}: nothing to charge for this change."
        )
    n_failed = _failed_count(session, sub.account_id, kind, sub.id)
    live = ledger.spendable_balance(session, sub.account_id, now)
    return ChangePreview(
        kind=kind,
        account_id=sub.account_id,
        subscription_id=sub.id,
        from_plan_key=current.key,
        from_plan_name=current.name,
        to_plan_key=new_plan.key,
        to_plan_name=new_plan.name,
        charge_cents=charge,
        currency=_currency(),
        credits_added=added,
        credits_burned=burned,
        balance_before=balance,
        balance_after=live - burned + added,
        new_renewal_date=renewal,
        renewal_amount_cents=new_plan.price_cents,
        idempotency_key=_change_key(kind, sub, new_plan.key, n_failed),
    )


def _changeable_subscription(session: Session, account_id: int, now: datetime) -> Subscription:
    sub = live_subscription(session, account_id)
    if sub is None:
        raise NoSubscription("You're on Free. Subscribe to a plan first.")
    if sub.status == SubscriptionStatus.PAST_DUE:
        raise PaymentPastDue(
            "Your last renewal payment failed. Update your card; we retry automatically, "
            "and you can change plans once it is paid."
        )
    if as_utc(sub.current_period_end) <= now:
        raise RenewalInProgress("Your plan is renewing right now. Try again in a minute.")
    return sub


def preview_change(session: Session, account_id: int, new_plan_key: str) -> ChangePreview:
    """What changing to `new_plan_key` would do now (kind, charge, credits
    added/burned, new renewal date). Raises for Free, the same plan, no plan."""
    account_id = _check_account_id(account_id)
    new_plan = _paid_plan(new_plan_key)
    now = clock.now()
    sub = _changeable_subscription(session, account_id, now)
    return _preview_change(session, sub, new_plan, now)


def change_plan(
    session: Session,
    account_id: int,
    new_plan_key: str,
    *,
    expected_preview: ChangePreview | None = None,
    gateway: PaymentGateway | None = None,
) -> Outcome:
    """Upgrade or downgrade now (PRODUCT_RULES §5), charging the saved card.

    With `expected_preview` (what the user confirmed): if the account no longer
    matches it, PreviewOutdated is raised and nothing happens; the same
    confirmation sent twice returns the first answer (charged once)."""
    account_id = _check_account_id(account_id)
    new_plan = _paid_plan(new_plan_key)
    _account(session, account_id)
    _lock(session, account_id)
    if expected_preview is not None:
        if (
            expected_preview.account_id != account_id
            or expected_preview.to_plan_key != new_plan.key
        ):
            raise PreviewOutdated(
                "This confirmation is for a different change. Please review it again."
            )
        done = invoices.find_by_key(session, expected_preview.idempotency_key)
        if done is not None:
            return _replay(done, expected_preview.kind)
    now = clock.now()
    sub = _changeable_subscription(session, account_id, now)
    preview = _preview_change(session, sub, new_plan, now)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise PreviewOutdated(
            "Your plan or balance changed since you reviewed this change. Nothing was charged; "
            "please review it again."
        )
    done = invoices.find_by_key(session, preview.idempotency_key)
    if done is not None:
        return _replay(done, preview.kind)
    gateway = gateway or get_gateway(sub.gateway)
    card = default_card(session, account_id)
    if card is None:
        raise NoPaymentMethod("Add a card to change plans.")
    current = get_plan(sub.plan_key)
    payment = _charge(
        session,
        gateway,
        account_id,
        card,
        preview.charge_cents,
        f"Workroom {current.name} to {new_plan.name}",
        preview.idempotency_key,
    )
    if payment.requires_action:
        return _needs_confirmation(
            session,
            account_id,
            preview.kind,
            payment,
            f"the change from {current.name} to {new_plan.name}",
            {"plan_key": new_plan.key, "from_plan": current.key, "subscription_id": sub.id},
            "/subscription",
        )
    if preview.kind == UPGRADE:
        if not payment.ok:
            return record_failed_attempt(
                session,
                account_id,
                kind=UPGRADE,
                payment=payment,
                plan_key=new_plan.key,
                subscription_id=sub.id,
                period_start=sub.current_period_start,
                period_end=sub.current_period_end,
                description=f"Upgrade from {current.name} to {new_plan.name} (price difference)",
            )
        return apply_upgrade(session, sub, new_plan.key, payment=payment)
    start, end, _ = periods.first_period(now)
    if not payment.ok:
        return record_failed_attempt(
            session,
            account_id,
            kind=DOWNGRADE,
            payment=payment,
            plan_key=new_plan.key,
            subscription_id=sub.id,
            period_start=start,
            period_end=end,
            description=f"{new_plan.name} plan, {_period_label(start, end)}",
        )
    return apply_downgrade(
        session, sub, new_plan.key, payment=payment, period_start=start, period_end=end
    )


def apply_upgrade(
    session: Session, subscription: Subscription, new_plan_key: str, *, payment: PaymentFacts
) -> Outcome:
    """A paid upgrade: the plan changes now, the difference in monthly credits is
    granted (a Plan change row, expiring with the current period), the renewal
    date stays. Idempotent on payment.idempotency_key."""
    if not payment.ok:
        raise SubscriptionError("An upgrade applies only after a successful payment.")
    sub = subscription
    new_plan = _paid_plan(new_plan_key)
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, UPGRADE)
    if sub.status == SubscriptionStatus.ENDED:
        raise NoSubscription("This subscription has ended.")
    current = get_plan(sub.plan_key)
    if new_plan.rank <= current.rank:
        raise SamePlan(f"{new_plan.name} is not an upgrade from {current.name}.")
    invoice, _ = _write_invoice(
        session,
        sub.account_id,
        kind=UPGRADE,
        payment=payment,
        lines=[
            LineItem(
                f"Upgrade from {current.name} to {new_plan.name} (price difference)",
                payment.amount_cents,
            )
        ],
        subscription_id=sub.id,
        plan_key=new_plan.key,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
    )
    added = new_plan.monthly_credits - current.monthly_credits
    if added > 0:
        ledger.grant(
            session,
            sub.account_id,
            added,
            action_type=ActionType.PLAN_CHANGE,
            source=GrantSource.PLAN_CHANGE,
            idempotency_key=f"upgrade-credits:{invoice.id}",
            expires_at=as_utc(sub.current_period_end),
            subscription_id=sub.id,
            reference_type="invoice",
            reference_id=str(invoice.id),
        )
    else:
        added = 0
    sub.plan_key = new_plan.key
    sub.updated_at = clock.now()
    session.add(sub)
    _receipt(session, invoice, new_plan.name)
    alerts.forget(sub.account_id)
    return Outcome(
        ok=True,
        action=UPGRADE,
        message=f"You're on {new_plan.name}. {added:,} credits were added to your balance.",
        subscription_id=sub.id,
        plan_key=new_plan.key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=added,
    )


def apply_downgrade(
    session: Session,
    subscription: Subscription,
    new_plan_key: str,
    *,
    payment: PaymentFacts,
    period_start: datetime,
    period_end: datetime,
) -> Outcome:
    """A paid downgrade: every credit the current plan granted is burned (a Plan
    change row), the lower plan starts a new period at `period_start` with its
    monthly credits (Subscription credits), renewals move to that day. Trial
    and refunded credits are kept. Idempotent on payment.idempotency_key."""
    if not payment.ok:
        raise SubscriptionError("A downgrade applies only after a successful payment.")
    sub = subscription
    new_plan = _paid_plan(new_plan_key)
    period_start, period_end = as_utc(period_start), as_utc(period_end)
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, DOWNGRADE)
    if sub.status == SubscriptionStatus.ENDED:
        raise NoSubscription("This subscription has ended.")
    current = get_plan(sub.plan_key)
    if new_plan.rank >= current.rank:
        raise SamePlan(f"{new_plan.name} is not a downgrade from {current.name}.")
    invoice, burned, _ = _start_paid_period(
        session,
        sub,
        new_plan,
        kind=DOWNGRADE,
        payment=payment,
        period_start=period_start,
        period_end=period_end,
        burn_action=ActionType.PLAN_CHANGE,
        burn_key="downgrade-burn",
        grant_action=ActionType.SUBSCRIPTION_CREDITS,
        grant_source=GrantSource.SUBSCRIPTION,
        grant_key="downgrade-credits",
    )
    sub.plan_key = new_plan.key
    sub.current_period_start = period_start
    sub.current_period_end = period_end
    sub.anchor_day = period_start.day
    sub.updated_at = clock.now()
    session.add(sub)
    _receipt(session, invoice, new_plan.name)
    alerts.forget(sub.account_id)
    burned_amount = -burned.amount if burned is not None else 0
    return Outcome(
        ok=True,
        action=DOWNGRADE,
        message=(
            f"You're on {new_plan.name}. {burned_amount:,} credits from {current.name} were burned "
            f"and {new_plan.monthly_credits:,} credits were added. Your plan now renews on "
            f"{_fmt_date(period_end, formatting.account_zone(session, sub.account_id))}."
        ),
        subscription_id=sub.id,
        plan_key=new_plan.key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=new_plan.monthly_credits,
        credits_burned=burned_amount,
    )
