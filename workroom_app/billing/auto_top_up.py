"""Auto top-up (opt-in, on the Subscription page).

Rules, in the words the UI uses (README "Decisions"):
- "When your balance falls below your threshold, we buy the pack you chose
  with your card on file, at most N times per calendar month (UTC)."
- It runs after the debit that crossed the threshold has committed, never
  inside it (billing/balance_watch.py), once per crossing: the top-up's
  idempotency key names that debit, and of many concurrent debits exactly one
  crosses. The monthly cap is counted under the account lock, so no number of
  concurrent debits can make it charge more.
- "A declined card turns auto top-up off and we email you the reason."
- Every top-up is a credit pack purchase: an invoice, a Credit pack row and a
  receipt (billing/packs.py).
With the local gateway the saved card is charged at once; with Stripe the top-up
is reserved here and charged off-session after the transaction commits
(billing/stripe_payments.py), credited once from Stripe's answer or its webhook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app.billing import alerts, balance_watch, clock, invoices
from workroom_app.billing.alerts import AlertError, check_whole
from workroom_app.billing.catalog import get_catalog
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.payments.gateway import PaymentGateway
from workroom_app.db import write_session
from workroom_app.models import AlertKind, Invoice, InvoiceStatus

# The ledger imports this module (to register the watcher), and the
# subscription engine imports the ledger: the engine's helpers are imported
# where they are used, not here.
PACK_KIND = "pack"  # billing.packs.PACK

log = logging.getLogger(__name__)

KEY_PREFIX = "auto-top-up:"
MAX_MONTHLY_CAP = 31


@dataclass(frozen=True)
class TopUpResult:
    ok: bool
    message: str
    credits_added: int = 0
    invoice_id: int | None = None
    turned_off: bool = False
    replayed: bool = False
    # With Stripe: the reserved top-up to charge once this transaction commits.
    pending_id: int | None = None


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def top_ups_this_month(session: Session, account_id: int, now: datetime | None = None) -> int:
    now = now or clock.now()
    return int(
        session.exec(
            select(func.count()).where(
                Invoice.account_id == account_id,
                Invoice.kind == PACK_KIND,
                Invoice.status == InvoiceStatus.PAID.value,
                Invoice.idempotency_key.startswith(KEY_PREFIX),
                Invoice.created_at >= month_start(now),
            )
        ).one()
    )


def save_settings(
    session: Session,
    account_id: int,
    *,
    enabled: object,
    threshold: object,
    pack_key: object,
    monthly_cap: object,
) -> alerts.Settings:
    """Validate and store auto top-up. Turning it on needs a card on file, a
    pack of the catalog, a threshold of at least 1 credit and a cap of 1 to 31."""
    from workroom_app.billing.payments import get_gateway  # noqa: PLC0415  (cycle via the ledger)
    from workroom_app.billing.subscriptions import default_card  # noqa: PLC0415  (cycle)

    if not isinstance(enabled, bool):
        raise AlertError("Auto top-up must be on or off.")
    if not enabled:
        alerts._upsert(session, account_id, {"auto_top_up": False})
        return alerts.read_settings(session, account_id)
    value = check_whole(threshold, "top-up threshold", minimum=1)
    cap = check_whole(monthly_cap, "monthly limit", minimum=1, maximum=MAX_MONTHLY_CAP)
    pack = get_catalog().pack(pack_key)
    if pack is None:
        raise AlertError("Choose one of the credit packs listed.")
    if get_gateway().name == "stripe":
        from workroom_app.billing import stripe_payments  # noqa: PLC0415  (cycle via the ledger)

        if not stripe_payments.has_card(session, account_id):
            raise AlertError(
                "Add a card first: with Stripe, auto top-up pays with the card your plan is paid with."
            )
    else:
        card = default_card(session, account_id)
        if card is None:
            raise AlertError("Add a card first: auto top-up pays with your card on file.")
    alerts._upsert(
        session,
        account_id,
        {
            "auto_top_up": True,
            "top_up_threshold": value,
            "top_up_pack": pack.key,
            "top_up_monthly_cap": cap,
        },
    )
    return alerts.read_settings(session, account_id)


def turn_off(session: Session, account_id: int, reason: str, dedupe: str) -> None:
    alerts._upsert(session, account_id, {"auto_top_up": False})
    alerts.notify(
        session,
        account_id,
        AlertKind.AUTO_TOP_UP,
        title="Auto top-up is off",
        body=(
            f"We could not buy your credit pack: {reason} Auto top-up is now off. Replace your card and "
            "turn it back on from the Subscription page."
        ),
        link=alerts.SUBSCRIPTION_LINK,
        dedupe_key=dedupe,
    )


def top_up(
    session: Session,
    account_id: int,
    crossing_entry_id: int,
    *,
    gateway: PaymentGateway | None = None,
) -> TopUpResult | None:
    """Buy the chosen pack for the debit `crossing_entry_id` that took the
    balance below the threshold. Once per crossing (its key), never past the
    monthly cap. None when auto top-up is off or the cap is reached."""
    from workroom_app.billing import (  # noqa: PLC0415  (cycle via the ledger)
        packs,
        payment_confirmation,
        stripe_payments,
    )
    from workroom_app.billing.payments import get_gateway  # noqa: PLC0415  (cycle via the ledger)
    from workroom_app.billing.subscriptions import (  # noqa: PLC0415  (cycle via the ledger)
        _card_on_file,
        _charge,
        _write_invoice,
    )

    invoices.lock_account(session, account_id)
    settings = alerts.read_settings(session, account_id)
    if not settings.auto_top_up:
        return None
    key = f"{KEY_PREFIX}{account_id}:{crossing_entry_id}"
    done = invoices.find_by_key(session, key)
    if done is not None:
        return TopUpResult(
            done.status == InvoiceStatus.PAID,
            "This top-up was already done.",
            invoice_id=done.id,
            replayed=True,
        )
    now = clock.now()
    if payment_confirmation.open_top_up(session, account_id):
        return None  # one waits for its card holder (or is under way): never two at once
    if top_ups_this_month(session, account_id, now) >= settings.top_up_monthly_cap:
        alerts.notify(
            session,
            account_id,
            AlertKind.AUTO_TOP_UP,
            title="Auto top-up reached its monthly limit",
            body=(
                f"Auto top-up already bought {settings.top_up_monthly_cap} packs this month, your limit. "
                "It buys again next month; buy credits by hand until then."
            ),
            link=alerts.CREDITS_LINK,
            dedupe_key=f"auto_top_up_cap:{account_id}:{now:%Y-%m}",
            send_email=False,
        )
        return None
    pack = get_catalog().pack(settings.top_up_pack)
    if pack is None:
        turn_off(session, account_id, "that pack is no longer sold.", f"auto_top_up_off:{key}")
        return TopUpResult(False, "That pack is no longer sold.", turned_off=True)
    gateway = gateway or get_gateway()
    if gateway.name == "stripe":
        # Reserved now (counted against the cap); charged off-session after this
        # transaction commits, never while it holds the account lock.
        if not stripe_payments.has_card(session, account_id):
            turn_off(session, account_id, "there is no card on file.", f"auto_top_up_off:{key}")
            return TopUpResult(False, "No card on file.", turned_off=True)
        row = stripe_payments.reserve_top_up(session, account_id, key, pack)
        return TopUpResult(False, "Charging your card.", pending_id=row.id)
    card = _card_on_file(session, account_id)
    if card is None:
        turn_off(session, account_id, "there is no card on file.", f"auto_top_up_off:{key}")
        return TopUpResult(False, "No card on file.", turned_off=True)
    payment = _charge(
        session,
        gateway,
        account_id,
        card,
        pack.price_cents,
        f"Workroom auto top-up: {pack.label}",
        key,
        off_session=True,
    )
    if payment.requires_action:
        outcome = payment_confirmation.require(
            session,
            account_id,
            kind=payment_confirmation.AUTO_TOP_UP,
            payment=payment,
            description=packs.pack_line(pack),
            details={"pack": packs.pack_details(pack)},
            return_path=alerts.CREDITS_LINK,
        )
        return TopUpResult(False, outcome.message)
    if not payment.ok:
        invoice, _ = _write_invoice(
            session,
            account_id,
            kind=packs.PACK,
            payment=payment,
            lines=[LineItem(f"Auto top-up: {packs.pack_line(pack)}", payment.amount_cents)],
            subscription_id=None,
            plan_key=None,
            period_start=None,
            period_end=None,
        )
        reason = invoice.failure_reason or "The payment failed."
        turn_off(session, account_id, reason, f"auto_top_up_off:{key}")
        return TopUpResult(False, reason, invoice_id=invoice.id, turned_off=True)
    outcome = packs.record_paid(session, account_id, pack, payment=payment)
    alerts.notify(
        session,
        account_id,
        AlertKind.AUTO_TOP_UP,
        title=f"Auto top-up: {pack.credits:,} credits added",
        body=f"Your balance fell below {settings.top_up_threshold:,} credits, so we bought {pack.label} "
        f"with your card on file. The receipt is in your email.",
        link=alerts.USAGE_LINK,
        dedupe_key=f"auto_top_up_done:{key}",
        send_email=False,  # the receipt is the email
    )
    return TopUpResult(True, outcome.message, pack.credits, outcome.invoice_id)


def after_crossing(engine: Engine, debit: balance_watch.Debit) -> None:
    """Called by the after-commit check (billing/alerts.py) for the debit that
    took the balance below the top-up threshold."""
    with write_session(engine) as session:
        result = top_up(session, debit.account_id, debit.entry_id)
    if result is not None and result.pending_id is not None:
        from workroom_app.billing import stripe_payments  # noqa: PLC0415  (cycle via the ledger)

        stripe_payments.run_top_up(engine, stripe_payments.stripe_gateway(), result.pending_id)
        alerts.forget(debit.account_id)  # a decline turned it off
        return
    if result is not None and result.turned_off:
        alerts.forget(debit.account_id)
