"""The Stripe side of payments: every call Workroom makes to Stripe goes through here.

Stripe is the source of truth for a Stripe subscription (its plan, period,
status and payments); the app mirrors it. The webhook processor
(billing/stripe_webhooks.py) re-reads objects through the `retrieve_*` methods
and turns them into plain, frozen views, so nothing outside this package
touches SDK objects (which in stripe-python 16 are not dicts).

Every write carries an idempotency key derived from the caller's operation key,
so a repeated request (a double click, a retry after a timeout, a webhook and
the user's own request racing) makes Stripe act once and answer the same way.

Money rules implemented here (PRODUCT_RULES §5):
- upgrade: charge exactly new price − current price, now, as one invoice with
  one invoice item; only once that invoice is paid is the price swapped on the
  subscription item, without proration, so the renewal date does not move and
  later renewals are at the new price. A declined charge voids the invoice and
  leaves the subscription untouched.
- downgrade: swap to the lower price with billing_cycle_anchor=now and no
  proration: Stripe starts a new period today and invoices the lower price at
  once; with payment_behavior=error_if_incomplete a declined card leaves the
  subscription as it was.
- cancel / resume: cancel_at_period_end true / false.

The package: errors.py, metadata.py (what we write on Stripe objects, request keys),
views.py (the frozen views), gateway.py (StripeGateway, the API client), sync.py (Stripe's
state -> the app's copy, shared by webhooks and user requests), actions.py (what a user does
with a Stripe plan or pack). This __init__ re-exports the client side only; import sync and
actions from their modules.
"""

from __future__ import annotations

from workroom_app.billing.payments.stripe.errors import StripeGatewayError, StripeNotConfigured
from workroom_app.billing.payments.stripe.gateway import StripeGateway, make_gateway
from workroom_app.billing.payments.stripe.metadata import (
    KIND_PACK,
    META_ACCOUNT,
    META_FROM_PLAN,
    META_KIND,
    META_PACK,
    META_PACK_CREDITS,
    META_PACK_PRICE,
    META_PLAN,
    META_SUBSCRIPTION,
    META_UPGRADE_INVOICE,
    PAID_PLANS,
    derive_key,
)
from workroom_app.billing.payments.stripe.views import (
    ChargeView,
    CheckoutSessionView,
    DisputeView,
    InvoiceLineView,
    InvoiceView,
    PackPaymentView,
    PaymentResult,
    RefundView,
    SubscriptionView,
)

__all__ = [
    "KIND_PACK",
    "META_ACCOUNT",
    "META_FROM_PLAN",
    "META_KIND",
    "META_PACK",
    "META_PACK_CREDITS",
    "META_PACK_PRICE",
    "META_PLAN",
    "META_SUBSCRIPTION",
    "META_UPGRADE_INVOICE",
    "PAID_PLANS",
    "ChargeView",
    "CheckoutSessionView",
    "DisputeView",
    "InvoiceLineView",
    "InvoiceView",
    "PackPaymentView",
    "PaymentResult",
    "RefundView",
    "StripeGateway",
    "StripeGatewayError",
    "StripeNotConfigured",
    "SubscriptionView",
    "derive_key",
    "make_gateway",
]
