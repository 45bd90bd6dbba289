"""Sending the card holder to a payment's confirmation step (3-D Secure).

A checkout, a pack, a plan change or Pay now whose payment waits for the card holder
answers Outcome(requires_action=True, confirm_url=...): the page goes there at once
(the local stand-in at /api/payments/confirm?token=…, or Stripe's hosted page), and
until it is answered every page shows "Confirm this payment" (components/balance_popover.py).
"""

from __future__ import annotations

import json

import reflex as rx

from workroom_app.billing.payment_confirmation import CONFIRM_PATH


def go_to_confirmation(url: str | None) -> rx.event.EventSpec:
    """A full page load (the step is served outside the app's pages): our own
    confirmation page or Stripe's (https) only."""
    if not url or not (url.startswith(f"{CONFIRM_PATH}?token=") or url.startswith("https://")):
        return rx.toast.error("This payment cannot be confirmed here. Please try again.")
    return rx.call_script(f"window.location.assign({json.dumps(url)})")
