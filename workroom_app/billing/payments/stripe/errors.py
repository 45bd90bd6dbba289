"""What a Stripe call can fail with; the messages are user-readable."""

from __future__ import annotations

from workroom_app.billing.payments.gateway import GatewayError


class StripeGatewayError(GatewayError):
    """A Stripe operation could not be done; the message is user-readable."""


class StripeNotConfigured(StripeGatewayError):
    pass
