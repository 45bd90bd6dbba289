"""Payment gateways. `get_gateway()` returns the one settings.payment_gateway names.

"local" (default): the test-mode gateway in payments/local.py, no keys needed.
"stripe": built by workroom_app.billing.payments.stripe.make_gateway(settings).
Other modules can add one with register_gateway(name, factory).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from workroom_app import settings as settings_module
from workroom_app.billing.payments.gateway import (
    CardOnFile,
    ChargeResult,
    GatewayError,
    PaymentGateway,
)

__all__ = [
    "CardOnFile",
    "ChargeResult",
    "GatewayError",
    "PaymentGateway",
    "get_gateway",
    "register_gateway",
]

_factories: dict[str, Callable[[object], PaymentGateway]] = {}
# Imported on first use only, so the local mode never needs Stripe configured.
_lazy: dict[str, str] = {
    "local": "workroom_app.billing.payments.local:make_gateway",
    "stripe": "workroom_app.billing.payments.stripe:make_gateway",
}
_instances: dict[str, PaymentGateway] = {}


def register_gateway(name: str, factory: Callable[[object], PaymentGateway]) -> None:
    _factories[name] = factory
    _instances.pop(name, None)


def get_gateway(name: str | None = None) -> PaymentGateway:
    settings = settings_module.get_settings()  # looked up per call: tests swap it
    name = (name or settings.payment_gateway or "local").strip().lower()
    gateway = _instances.get(name)
    if gateway is not None:
        return gateway
    factory = _factories.get(name)
    if factory is None and name in _lazy:
        module_name, attr = _lazy[name].split(":")
        factory = getattr(importlib.import_module(module_name), attr)
    if factory is None:
        raise GatewayError(f"Unknown payment gateway {name!r}: use 'local' or 'stripe'.")
    gateway = _instances[name] = factory(settings)
    return gateway
