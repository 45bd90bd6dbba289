"""Plain, frozen views of Stripe objects: nothing outside this package touches SDK objects
(which in stripe-python 16 are not dicts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workroom_app.billing.payments.stripe.metadata import (
    META_ACCOUNT,
    META_KIND,
)


@dataclass(frozen=True)
class CheckoutSessionView:
    id: str
    url: str | None
    status: str | None
    payment_status: str | None
    client_reference_id: str | None
    customer_id: str | None
    subscription_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    mode: str | None = None  # subscription, payment
    amount_total: int | None = None
    currency: str | None = None
    payment_intent_id: str | None = None


@dataclass(frozen=True)
class PackPaymentView:
    """A credit pack's Checkout Session as Stripe has it now, with the card that paid."""

    session: CheckoutSessionView
    paid: bool
    account_id: int | None
    pack_key: str | None
    credits: int | None
    price_cents: int | None
    card_brand: str | None = None
    card_last4: str | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class SubscriptionView:
    id: str
    customer_id: str
    status: str  # incomplete, active, past_due, canceled, unpaid, ...
    item_id: str
    price_id: str
    price_cents: int
    currency: str
    plan_key: str | None  # None when the price is none of the configured plans
    period_start: datetime
    period_end: datetime
    cancel_at_period_end: bool
    latest_invoice_id: str | None
    metadata: dict[str, str]
    canceled_at: datetime | None = None

    @property
    def account_id(self) -> int | None:
        raw = self.metadata.get(META_ACCOUNT, "")
        return int(raw) if raw.isdigit() else None


@dataclass(frozen=True)
class InvoiceLineView:
    description: str
    amount_cents: int
    quantity: int
    price_id: str | None = None


@dataclass(frozen=True)
class InvoiceView:
    id: str
    status: str | None  # draft, open, paid, void, uncollectible
    number: str | None
    billing_reason: (
        str | None
    )  # subscription_create, subscription_cycle, subscription_update, manual
    customer_id: str | None
    subscription_id: str | None
    amount_due: int
    amount_paid: int
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    lines: tuple[InvoiceLineView, ...]
    metadata: dict[str, str]
    card_brand: str | None = None
    card_last4: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
    paid_at: datetime | None = None
    attempt_count: int = 0
    # 3-D Secure: the payment waits for the customer on hosted_invoice_url.
    requires_action: bool = False
    hosted_invoice_url: str | None = None

    @property
    def paid(self) -> bool:
        return self.status == "paid"

    @property
    def kind(self) -> str:
        """activation, renewal, downgrade or upgrade (Workroom's invoice kinds)."""
        if self.metadata.get(META_KIND):
            return self.metadata[META_KIND]
        return {
            "subscription_create": "activation",
            "subscription_cycle": "renewal",
            "subscription_update": "downgrade",
        }.get(self.billing_reason or "", "other")


@dataclass(frozen=True)
class PaymentResult:
    """What an upgrade or downgrade charge did."""

    ok: bool
    invoice: InvoiceView | None
    subscription: SubscriptionView | None
    amount_cents: int
    failure_code: str | None = None
    failure_reason: str | None = None
    requires_action: bool = False  # 3-D Secure: the customer confirms on action_url
    action_url: str | None = None


@dataclass(frozen=True)
class RefundView:
    id: str
    status: str
    amount: int
    charge_id: str | None
    payment_intent_id: str | None


@dataclass(frozen=True)
class ChargeView:
    id: str
    amount: int
    amount_refunded: int
    currency: str
    payment_intent_id: str | None
    status: str


@dataclass(frozen=True)
class DisputeView:
    id: str
    charge_id: str
    amount: int
    currency: str
    reason: str
    status: str
    payment_intent_id: str | None
