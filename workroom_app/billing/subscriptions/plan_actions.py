"""What a user can do with their plan, whichever gateway bills it.

The Plans, Checkout and Subscription pages call only this module for plan decisions:
where the account stands (``Standing`` and its predicates), which action each plan's
button means (``available_actions``), what an action will do (``preview_*``), and the
verbs themselves (``subscribe``, ``checkout_url``, ``finish_checkout``, ``swap``,
``cancel``, ``resume``), which run on the gateway that bills the subscription (a new plan:
the configured one), chosen in billing/gateway_dispatch.py.

Blocking: each verb opens its own transaction (the pages call them in a thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from workroom_app.billing import clock, formatting, gateway_dispatch, ledger
from workroom_app.billing.catalog import Plan, get_catalog
from workroom_app.billing.payments.gateway import GatewayError
from workroom_app.billing.subscriptions.card_storage import CardForm
from workroom_app.billing.subscriptions.checkout import preview_subscribe
from workroom_app.billing.subscriptions.errors import (
    NoSubscription,
    PreviewOutdated,
    SubscriptionError,
    UnknownPlan,
)
from workroom_app.billing.subscriptions.lookup import get_plan, live_subscription
from workroom_app.billing.subscriptions.payment_records import Outcome
from workroom_app.billing.subscriptions.plan_changes import preview_change
from workroom_app.billing.subscriptions.previews import ChangePreview, SubscribePreview
from workroom_app.billing.subscriptions.summary import SubscriptionSummary, summary
from workroom_app.db import read_session

# What a plan's button does (the action names the pages show and send back).
SUBSCRIBE = "subscribe"
UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
CANCEL = "cancel"
RESUME = "resume"


@dataclass(frozen=True)
class Standing:
    """Where the account stands, read in one short transaction.

    The predicates read the app's own copy of the subscription, which is the record for
    every gateway (a Stripe subscription is mirrored into it by billing/payments/stripe/sync.py).
    """

    plan_key: str
    status: str  # free | active | past_due
    gateway: str  # the subscription's gateway; on Free, the one a new plan would use
    cancel_at_period_end: bool
    period_end: datetime | None
    has_card: bool
    zone: str = "UTC"  # the account's time zone, for the dates shown

    def ended(self) -> bool:
        """No live paid plan: the account is on Free (never subscribed, or its plan ended)."""
        return self.status == "free"

    def past_due(self) -> bool:
        """The last renewal payment failed and the plan is waiting for it."""
        return self.status == "past_due"

    def on_grace_period(self) -> bool:
        """Auto-renewal is off: the plan stays until its period ends, then the account is on Free."""
        return self.status == "active" and self.cancel_at_period_end

    def auto_renews(self) -> bool:
        """A paid plan in good standing that renews at its period end."""
        return self.status == "active" and not self.cancel_at_period_end

    @property
    def cards_managed_here(self) -> bool:
        """The card on file is replaced with our card form (else on the gateway's own pages)."""
        return gateway_dispatch.billing_gateway(self.gateway).cards_managed_here


@dataclass(frozen=True)
class AutoRenewalPreview:
    """What cancelling or resuming auto-renewal will do, shown before the user confirms."""

    plan_key: str
    plan_name: str
    period_end: datetime | None
    credits_left: int  # the plan's credits that expire when it ends
    price_cents: int
    currency: str
    cancel_at_period_end: bool
    status: str


def standing(session: Session, account_id: int, s: SubscriptionSummary | None = None) -> Standing:
    """The account's Standing (`s`: its summary, when the caller has read it already)."""
    s = s if s is not None else summary(session, account_id)
    sub = live_subscription(session, account_id)
    return Standing(
        plan_key=s.plan_key,
        status=s.status,
        gateway=sub.gateway if sub is not None else gateway_dispatch.configured_gateway_name(),
        cancel_at_period_end=s.cancel_at_period_end,
        period_end=s.current_period_end,
        has_card=s.card is not None,
        zone=formatting.account_zone(session, account_id).key,
    )


def read_standing(account_id: int) -> Standing:
    with read_session() as session:
        return standing(session, account_id)


def current_plan(state: Standing) -> Plan:
    catalog = get_catalog()
    return catalog.default_plan if state.ended() else catalog.plan(state.plan_key)


def available_actions(state: Standing) -> dict[str, str]:
    """Each catalog plan's key -> what its button does for this account ("" for no button)."""
    catalog = get_catalog()
    current = current_plan(state)
    actions: dict[str, str] = {}
    for plan in catalog.plans:
        action = ""
        if plan.key == current.key:
            if state.past_due():
                action = CANCEL
            elif state.on_grace_period():
                action = RESUME
            elif not state.ended():
                action = CANCEL
        elif not plan.paid:
            action = ""
        elif state.ended():
            action = SUBSCRIBE
        elif plan.rank > current.rank:
            action = UPGRADE
        elif plan.rank < current.rank:
            action = DOWNGRADE
        actions[plan.key] = action
    return actions


def action_for(state: Standing, plan_key: str) -> str:
    """The action `plan_key`'s button means for this account, or SubscriptionError saying why
    there is none."""
    actions = available_actions(state)
    if plan_key not in actions:
        raise UnknownPlan(plan_key)
    if not actions[plan_key]:
        plan = get_plan(plan_key)
        raise SubscriptionError(
            f"{plan.name} is your current plan."
            if plan.key == current_plan(state).key
            else f"There is nothing to do on {plan.name} from your plan: "
            "to go back to Free, cancel auto-renewal."
        )
    return actions[plan_key]


def preview_auto_renewal(session: Session, account_id: int) -> AutoRenewalPreview:
    s = summary(session, account_id)
    if s.subscription_id is None:
        raise NoSubscription("You're on Free: there is no auto-renewal to change.")
    plan = get_plan(s.plan_key)
    return AutoRenewalPreview(
        plan_key=s.plan_key,
        plan_name=plan.name,
        period_end=s.current_period_end,
        credits_left=ledger.subscription_credits_left(session, s.subscription_id, clock.now()),
        price_cents=plan.price_cents,
        currency=get_catalog().currency,
        cancel_at_period_end=s.cancel_at_period_end,
        status=s.status,
    )


preview_cancel = preview_auto_renewal
preview_resume = preview_auto_renewal


def preview(
    account_id: int, action: str, plan_key: str
) -> SubscribePreview | ChangePreview | AutoRenewalPreview:
    """The engine's preview of `action` on `plan_key` (blocking, its own read)."""
    with read_session() as session:
        if action == SUBSCRIBE:
            return preview_subscribe(session, account_id, plan_key)
        if action in (UPGRADE, DOWNGRADE):
            change = preview_change(session, account_id, plan_key)
            if change.kind != action:
                raise PreviewOutdated("Your plan changed. Please review the plans again.")
            return change
        return preview_auto_renewal(session, account_id)


# ----------------------------------------------------------------------------- verbs


def new_plans_use_hosted_checkout() -> bool:
    """A new plan is paid on the gateway's own page (else on our checkout page)."""
    return gateway_dispatch.for_new_purchase().hosted_checkout


def subscribe(account_id: int, expected: SubscribePreview, card: CardForm | None) -> Outcome:
    """Pay for a new plan with our card form (`card`, or the card on file when None)."""
    return gateway_dispatch.for_new_purchase().subscribe(account_id, expected, card)


def checkout_url(
    account_id: int, expected: SubscribePreview, *, success_url: str, cancel_url: str
) -> str:
    """The gateway's own checkout page for a new plan (hosted-checkout gateways)."""
    return gateway_dispatch.for_new_purchase().checkout_url(
        account_id, expected, success_url=success_url, cancel_url=cancel_url
    )


def finish_checkout(checkout_session_id: str) -> None:
    """Back from a hosted checkout: activate the plan now rather than wait for the webhook."""
    gateway_dispatch.for_new_purchase().finish_checkout(checkout_session_id)


def _billing_gateway(account_id: int) -> gateway_dispatch.BillingGateway:
    with read_session() as session:
        sub = live_subscription(session, account_id)
    return gateway_dispatch.billing_gateway(sub.gateway if sub is not None else None)


def swap(account_id: int, expected: ChangePreview) -> Outcome:
    """Upgrade or downgrade exactly as previewed (PreviewOutdated when anything changed)."""
    return _billing_gateway(account_id).swap(account_id, expected)


def pay_now(account_id: int) -> Outcome:
    """Past due: pay the failed renewal now, on the gateway that bills the plan."""
    return _billing_gateway(account_id).pay_now(account_id)


def cancel(account_id: int) -> Outcome:
    """Stop auto-renewal (a past-due plan ends now)."""
    return _billing_gateway(account_id).cancel(account_id)


def resume(account_id: int) -> Outcome:
    """Turn auto-renewal back on before the period ends."""
    return _billing_gateway(account_id).resume(account_id)


def user_message(exc: BaseException) -> str | None:
    """The message to show for a refusal from the engine or a gateway (their messages are
    written for the user); None for anything else (a bug: log it, show a generic text)."""
    if isinstance(exc, SubscriptionError | GatewayError):
        return str(exc)
    return None
