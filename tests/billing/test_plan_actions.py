"""Which action each plan's button means, and which gateway does it, decided in billing/
(PRODUCT_RULES §5: subscribe from Free, upgrade/downgrade by plan rank, cancel or resume
the current plan; Free is never a plan you change to)."""

from __future__ import annotations

import pytest

from workroom_app.billing import gateway_dispatch
from workroom_app.billing.subscriptions import SubscriptionError, UnknownPlan, plan_actions
from workroom_app.billing.subscriptions.plan_actions import (
    CANCEL,
    DOWNGRADE,
    RESUME,
    SUBSCRIBE,
    UPGRADE,
    Standing,
)


def standing(plan_key: str = "free", status: str = "free", cancel: bool = False) -> Standing:
    return Standing(
        plan_key=plan_key,
        status=status,
        gateway="local",
        cancel_at_period_end=cancel,
        period_end=None,
        has_card=False,
    )


def test_on_free_every_paid_plan_subscribes_and_free_has_no_button():
    s = standing()
    assert s.ended() and not s.past_due() and not s.on_grace_period() and not s.auto_renews()
    assert plan_actions.available_actions(s) == {
        "free": "",
        "starter": SUBSCRIBE,
        "pro": SUBSCRIBE,
        "studio": SUBSCRIBE,
    }


def test_on_a_paid_plan_higher_ranks_upgrade_lower_downgrade_and_the_current_cancels():
    s = standing("pro", "active")
    assert s.auto_renews() and not s.ended()
    assert plan_actions.available_actions(s) == {
        "free": "",
        "starter": DOWNGRADE,
        "pro": CANCEL,
        "studio": UPGRADE,
    }


def test_a_cancelled_plan_in_its_last_period_offers_resume():
    s = standing("pro", "active", cancel=True)
    assert s.on_grace_period() and not s.auto_renews()
    assert plan_actions.available_actions(s)["pro"] == RESUME


def test_a_past_due_plan_offers_cancel_not_resume():
    s = standing("starter", "past_due")
    assert s.past_due() and not s.on_grace_period()
    actions = plan_actions.available_actions(s)
    assert actions["starter"] == CANCEL and actions["pro"] == UPGRADE


def test_action_for_says_why_a_plan_has_no_button():
    with pytest.raises(SubscriptionError, match="Free is your current plan"):
        plan_actions.action_for(standing(), "free")
    with pytest.raises(SubscriptionError, match="cancel auto-renewal"):
        plan_actions.action_for(standing("pro", "active"), "free")
    with pytest.raises(UnknownPlan):
        plan_actions.action_for(standing(), "platinum")
    assert plan_actions.action_for(standing("pro", "active"), "studio") == UPGRADE


def test_each_gateway_says_what_it_can_do_and_unknown_names_charge_directly():
    local = gateway_dispatch.billing_gateway("local")
    assert not local.hosted_checkout and local.cards_managed_here
    stripe = gateway_dispatch.billing_gateway("stripe")
    assert stripe.hosted_checkout and not stripe.cards_managed_here
    # A gateway added with payments.register_gateway charges directly, like the local one.
    assert gateway_dispatch.billing_gateway("acme") is gateway_dispatch.LOCAL
    assert standing().cards_managed_here
    assert not Standing("pro", "active", "stripe", False, None, True).cards_managed_here
