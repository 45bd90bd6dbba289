"""Buying a credit pack on the configured gateway's own page (hosted checkout), for the
Credits page: whether packs are paid there, its URL, and crediting the pack on the way back.
With a gateway that charges directly, packs are bought with billing/packs.py's ``buy``."""

from __future__ import annotations

from workroom_app.billing import gateway_dispatch
from workroom_app.billing.packs import PackPreview


def uses_hosted_checkout() -> bool:
    return gateway_dispatch.for_new_purchase().hosted_checkout


def checkout_url(
    account_id: int, expected: PackPreview, *, success_url: str, cancel_url: str
) -> str:
    return gateway_dispatch.for_new_purchase().pack_checkout_url(
        account_id, expected, success_url=success_url, cancel_url=cancel_url
    )


def finish_checkout(account_id: int, checkout_session_id: str) -> bool:
    """Credit the pack paid in that checkout now. True when it is a paid pack of this
    account (credited now or before)."""
    return gateway_dispatch.for_new_purchase().finish_pack_checkout(account_id, checkout_session_id)
