"""Which payment gateway handles a user's request, and what each one does with it.

A plan that exists is handled by the gateway that bills it (``Subscription.gateway``); a
new plan or a credit pack by the gateway the settings name (``payment_gateway``). Pages never
ask which gateway that is: they call billing/subscriptions/plan_actions.py and
billing/pack_checkout.py, which call the gateway chosen here. Each gateway says what it can
do (``hosted_checkout``: the card is typed on the gateway's own page; ``cards_managed_here``:
the card on file is replaced with our card form) instead of pages testing its name.

The local gateway (test mode, charges directly) is implemented below through the
subscription engine; Stripe's is ``StripeBilling`` in billing/payments/stripe/actions.py.
To add a gateway: implement ``BillingGateway`` and name it in ``_LAZY``.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from workroom_app import settings
from workroom_app.billing import packs
from workroom_app.billing.subscriptions.cancel import cancel as local_cancel
from workroom_app.billing.subscriptions.cancel import resume as local_resume
from workroom_app.billing.subscriptions.card_storage import CardForm
from workroom_app.billing.subscriptions.checkout import subscribe as local_subscribe
from workroom_app.billing.subscriptions.errors import SubscriptionError
from workroom_app.billing.subscriptions.payment_records import Outcome
from workroom_app.billing.subscriptions.plan_changes import change_plan
from workroom_app.billing.subscriptions.previews import ChangePreview, SubscribePreview
from workroom_app.billing.subscriptions.renewal import pay_now as local_pay_now
from workroom_app.db import write_session


class BillingGateway(Protocol):
    name: str
    # New plans and packs are paid on the gateway's own page (not our card form).
    hosted_checkout: bool
    # The card on file is replaced with our card form (else on the gateway's pages).
    cards_managed_here: bool

    def subscribe(
        self, account_id: int, expected: SubscribePreview, card: CardForm | None
    ) -> Outcome: ...

    def checkout_url(
        self, account_id: int, expected: SubscribePreview, *, success_url: str, cancel_url: str
    ) -> str: ...

    def finish_checkout(self, checkout_session_id: str) -> None: ...

    def swap(self, account_id: int, expected: ChangePreview) -> Outcome: ...

    def cancel(self, account_id: int) -> Outcome: ...

    def pay_now(self, account_id: int) -> Outcome: ...

    def resume(self, account_id: int) -> Outcome: ...

    def pack_checkout_url(
        self,
        account_id: int,
        expected: packs.PackPreview,
        *,
        success_url: str,
        cancel_url: str,
    ) -> str: ...

    def finish_pack_checkout(self, account_id: int, checkout_session_id: str) -> bool: ...


class LocalBilling:
    """A gateway that charges directly (the local test mode, or one added with
    payments.register_gateway): our card form, the engine's verbs, which charge through
    ``payments.get_gateway(subscription.gateway)``."""

    name = "local"
    hosted_checkout = False
    cards_managed_here = True

    def subscribe(
        self, account_id: int, expected: SubscribePreview, card: CardForm | None
    ) -> Outcome:
        with write_session() as session:
            return local_subscribe(
                session, account_id, expected.plan_key, card=card, expected_preview=expected
            )

    def checkout_url(
        self, account_id: int, expected: SubscribePreview, *, success_url: str, cancel_url: str
    ) -> str:
        raise SubscriptionError("Subscribing goes through the checkout page.")

    def finish_checkout(self, checkout_session_id: str) -> None:
        return None  # no hosted checkout to come back from

    def swap(self, account_id: int, expected: ChangePreview) -> Outcome:
        with write_session() as session:
            return change_plan(session, account_id, expected.to_plan_key, expected_preview=expected)

    def cancel(self, account_id: int) -> Outcome:
        with write_session() as session:
            return local_cancel(session, account_id)

    def pay_now(self, account_id: int) -> Outcome:
        with write_session() as session:
            return local_pay_now(session, account_id)

    def resume(self, account_id: int) -> Outcome:
        with write_session() as session:
            return local_resume(session, account_id)

    def pack_checkout_url(
        self,
        account_id: int,
        expected: packs.PackPreview,
        *,
        success_url: str,
        cancel_url: str,
    ) -> str:
        raise SubscriptionError("Credit packs are paid with the card form on this page.")

    def finish_pack_checkout(self, account_id: int, checkout_session_id: str) -> bool:
        return False  # no hosted checkout to come back from


LOCAL = LocalBilling()

# Imported on first use: the local mode never loads Stripe, and the Stripe side imports the
# subscription engine, which this module's callers are part of.
_LAZY = {"stripe": "workroom_app.billing.payments.stripe.actions:STRIPE"}
_loaded: dict[str, BillingGateway] = {"local": LOCAL}


def billing_gateway(name: str | None) -> BillingGateway:
    """The gateway called `name` (as stored on a subscription), else the configured one."""
    name = (name or configured_gateway_name()).strip().lower()
    gateway = _loaded.get(name)
    if gateway is None:
        if name not in _LAZY:
            return LOCAL  # charges directly: the engine's verbs pick its payments gateway
        module_name, attr = _LAZY[name].split(":")
        gateway = _loaded[name] = getattr(importlib.import_module(module_name), attr)
    return gateway


def configured_gateway_name() -> str:
    """The gateway new plans and packs are bought through (settings.payment_gateway)."""
    return (settings.get_settings().payment_gateway or "local").strip().lower()


def for_new_purchase() -> BillingGateway:
    return billing_gateway(configured_gateway_name())
