"""The names Workroom writes on Stripe objects, and the idempotency keys of its requests."""

from __future__ import annotations

import hashlib

PAID_PLANS = ("starter", "pro", "studio")


# Metadata keys Workroom writes on Stripe objects (and trusts only after
# re-reading the object from Stripe).
META_ACCOUNT = "workroom_account_id"


META_PLAN = "workroom_plan"


META_KIND = "workroom_kind"


META_SUBSCRIPTION = "workroom_stripe_subscription"


META_FROM_PLAN = "workroom_from_plan"


META_UPGRADE_INVOICE = "workroom_upgrade_invoice"


# A credit pack's Checkout Session (mode payment): what was sold, written by us.
KIND_PACK = "pack"


META_PACK = "workroom_pack"


META_PACK_CREDITS = "workroom_pack_credits"


META_PACK_PRICE = "workroom_pack_price_cents"


def derive_key(operation_key: str, step: str) -> str:
    """Per-request idempotency key for one step of an operation (Stripe keys are ≤ 255 chars)."""
    key = f"wr:{operation_key}:{step}"
    if len(key) > 200:
        key = f"wr:{hashlib.sha256(operation_key.encode()).hexdigest()}:{step}"
    return key


# Stripe's answer to invoices.pay when the card holder must authenticate first (3-D Secure).
REQUIRES_ACTION_CODE = "invoice_payment_intent_requires_action"
