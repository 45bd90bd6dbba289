"""The payment gateway interface shared by the local test mode and Stripe.

A gateway only takes money; the subscription engine decides what a payment
means (a plan activates, credits are granted, an invoice is written). So the
engine works the same whichever gateway took the payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    gateway_ref: str | None  # the gateway's id for the charge (also for a declined one)
    failure_reason: str | None = None  # user-readable, e.g. "Your card has insufficient funds."
    failure_code: str | None = None  # machine code, e.g. "insufficient_funds"
    # Neither paid nor declined: the card holder must confirm it (3-D Secure)
    # at action_url (Stripe's hosted page; the local gateway's stand-in has none).
    requires_action: bool = False
    action_url: str | None = None


@dataclass(frozen=True)
class CardOnFile:
    """What the engine needs to charge a card: the gateway's token plus what an
    invoice shows. A saved PaymentMethod row has these attributes too."""

    gateway_ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@runtime_checkable
class PaymentGateway(Protocol):
    name: str

    def charge(
        self,
        account_id: int,
        payment_method: Any,
        amount_cents: int,
        currency: str,
        description: str,
        idempotency_key: str,
        *,
        session: Any = None,
        off_session: bool = False,
    ) -> ChargeResult:
        """Take `amount_cents` from the card (anything with .gateway_ref).

        The same idempotency key twice returns the first answer and charges
        once. `session`: a gateway that keeps its records in our database (the
        local one) writes them in the caller's transaction; others ignore it.
        `off_session`: the card holder is not present (a renewal, an auto
        top-up); a card may then need authentication when it would not on the
        page, or the other way round (see cards.needs_authentication).
        """
        ...


class GatewayError(Exception):
    """The gateway could not be used (misconfigured, unknown); user-readable."""
