"""Cancel and resume auto-renewal (the plan stops, or not, at the period end)."""

from __future__ import annotations

from sqlmodel import Session

from workroom_app.billing import clock, formatting
from workroom_app.billing.periods import as_utc
from workroom_app.billing.subscriptions.errors import NoSubscription
from workroom_app.billing.subscriptions.lookup import (
    _check_account_id,
    _fmt_date,
    _lock,
    _reload,
    get_plan,
    live_subscription,
)
from workroom_app.billing.subscriptions.payment_records import Outcome
from workroom_app.billing.subscriptions.renewal import end_subscription
from workroom_app.models import Subscription, SubscriptionStatus


def set_cancel_at_period_end(session: Session, subscription: Subscription, cancel: bool) -> bool:
    """Record whether the plan stops at the period end. True when it changed."""
    sub = subscription
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    if sub.status == SubscriptionStatus.ENDED or bool(sub.cancel_at_period_end) == bool(cancel):
        return False
    sub.cancel_at_period_end = bool(cancel)
    sub.updated_at = clock.now()
    session.add(sub)
    return True


def cancel(session: Session, account_id: int) -> Outcome:
    """Stop auto-renewal: plan, features and credits stay until the period end,
    then the plan's credits expire and the account is on Free. A past-due plan
    (its paid period is already over) ends now."""
    account_id = _check_account_id(account_id)
    _lock(session, account_id)
    sub = live_subscription(session, account_id)
    if sub is None:
        raise NoSubscription("You're on Free: there is no auto-renewal to stop.")
    plan = get_plan(sub.plan_key)
    if sub.status == SubscriptionStatus.PAST_DUE:
        set_cancel_at_period_end(session, sub, True)
        return end_subscription(session, sub, reason="cancelled")
    changed = set_cancel_at_period_end(session, sub, True)
    end = as_utc(sub.current_period_end)
    return Outcome(
        ok=True,
        action="cancel",
        message=(
            f"Auto-renewal is off. {plan.name} and its credits stay until "
            f"{_fmt_date(end, formatting.account_zone(session, account_id))}; "
            "then you're on Free."
        ),
        subscription_id=sub.id,
        plan_key=sub.plan_key,
        replayed=not changed,
    )


def resume(session: Session, account_id: int) -> Outcome:
    """Turn auto-renewal back on before the period ends."""
    account_id = _check_account_id(account_id)
    _lock(session, account_id)
    sub = live_subscription(session, account_id)
    if sub is None:
        raise NoSubscription("Your plan has ended. Subscribe again from the Plans page.")
    plan = get_plan(sub.plan_key)
    if as_utc(sub.current_period_end) <= clock.now() and sub.cancel_at_period_end:
        raise NoSubscription("Your plan has ended. Subscribe again from the Plans page.")
    changed = set_cancel_at_period_end(session, sub, False)
    return Outcome(
        ok=True,
        action="resume",
        message=(
            f"Auto-renewal is on. {plan.name} renews on "
            f"{_fmt_date(as_utc(sub.current_period_end), formatting.account_zone(session, account_id))}."
        ),
        subscription_id=sub.id,
        plan_key=sub.plan_key,
        replayed=not changed,
    )
