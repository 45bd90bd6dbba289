"""Credit packs: one-off purchases of credits, on every plan (Free included).

Rules (README "Decisions", in the words the UI uses):
- "Pack credits expire 12 months after purchase" (the catalog's
  pack_expiry_months) "and are spent after plan credits": spending draws from
  the soonest-expiring grant first, and a plan's credits always expire before a
  pack bought since (a period is at most a month). A pack bought long ago that
  now expires sooner than the plan's credits is spent first, which is what a
  user wants (it would be lost otherwise).
- "Downgrading or the end of a plan never burns credits from packs": pack
  grants belong to no subscription, and only a subscription's grants are burned.
- A purchase is an invoice (kind "pack", numbered like every other invoice),
  a Credit pack row on Usage (a grant with source "pack") and a receipt email,
  all in one transaction.
- The price and the credits come from the catalog, never from the browser; the
  browser names a pack key, which must be one of the catalog's.
- A double click is charged once: the purchase's idempotency key is derived
  from the account's state when the user saw the price (how many pack
  payments it had), handed back on Pay, and one invoice exists per key.

Gateway-neutral like the subscription engine: `buy` charges through a gateway
that can charge directly (the local test mode); `record_paid` applies a payment
some gateway already took (the Stripe webhook calls it with the Checkout
Session's id as the key, so a re-delivered or reordered event credits once).
Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, select

from workroom_app.billing import clock, formatting, invoices, ledger, periods, receipts
from workroom_app.billing.catalog import CreditPack, get_catalog
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.gateway import PaymentGateway
from workroom_app.billing.subscriptions import (
    CardForm,
    Outcome,
    PaymentFacts,
    PreviewOutdated,
    SubscriptionError,
    _account,
    _charge,
    _check_account_id,
    _currency,
    _email_stmt,
    _write_invoice,
    card_to_charge,
    default_card,
    store_card,
)
from workroom_app.billing.subscriptions.payment_records import _card_details, _needs_confirmation
from workroom_app.models import ActionType, GrantSource, Invoice, InvoiceStatus

PACK = "pack"  # the invoice kind and the Outcome action

__all__ = [
    "PACK",
    "PackError",
    "UnknownPack",
    "PackPreview",
    "check_pack",
    "preview",
    "buy",
    "record_paid",
    "expiry_for",
    "pack_line",
]


class PackError(SubscriptionError):
    """A pack purchase that cannot go ahead; the message is shown to the user."""


class UnknownPack(PackError):
    def __init__(self) -> None:
        super().__init__("That credit pack does not exist. Choose one of the packs listed.")


@dataclass(frozen=True)
class PackPreview:
    """Exactly what Pay will do, shown before the user pays."""

    account_id: int
    pack_key: str
    label: str
    credits: int
    charge_cents: int
    currency: str
    expires_on: date
    idempotency_key: str

    def same_terms(self, other: PackPreview) -> bool:
        # The expiry date moves at midnight; the price and credits must not move at all.
        return (
            self.account_id,
            self.pack_key,
            self.credits,
            self.charge_cents,
            self.currency,
            self.idempotency_key,
        ) == (
            other.account_id,
            other.pack_key,
            other.credits,
            other.charge_cents,
            other.currency,
            other.idempotency_key,
        )


def check_pack(pack_key: object) -> CreditPack:
    """The catalog's pack for a key as a browser may send it, or UnknownPack."""
    pack = get_catalog().pack(pack_key)
    if pack is None:
        raise UnknownPack()
    return pack


def expiry_for(bought_at: datetime) -> datetime:
    """When credits bought at `bought_at` expire: the catalog's months later,
    same day of the month (the 31st becomes the last day of shorter months)."""
    bought_at = periods.as_utc(bought_at)
    return periods.add_months(bought_at, get_catalog().pack_expiry_months, bought_at.day)


def pack_line(pack: CreditPack) -> str:
    return f"Credit pack: {pack.label}"


def pack_details(pack: CreditPack) -> dict:
    """What was sold, kept with a payment that waits for confirmation (the catalog may change)."""
    return {
        "key": pack.key,
        "label": pack.label,
        "credits": pack.credits,
        "price_cents": pack.price_cents,
    }


def _purchase_key(session: Session, account_id: int, pack_key: str) -> str:
    # Derived from the account's state: a double submit shares it (charged
    # once); after any pack payment, paid or declined, the next one gets a new key.
    n_packs = session.exec(
        select(func.count()).where(Invoice.account_id == account_id, Invoice.kind == PACK)
    ).one()
    return f"pack:{account_id}:{pack_key}:{n_packs}"


def preview(session: Session, account_id: int, pack_key: object) -> PackPreview:
    account_id = _check_account_id(account_id)
    pack = check_pack(pack_key)
    return PackPreview(
        account_id=account_id,
        pack_key=pack.key,
        label=pack.label,
        credits=pack.credits,
        charge_cents=pack.price_cents,
        currency=_currency(),
        expires_on=expiry_for(clock.now()).date(),
        idempotency_key=_purchase_key(session, account_id, pack.key),
    )


def _replay(invoice: Invoice, credits: int) -> Outcome:
    ok = invoice.status != InvoiceStatus.FAILED
    return Outcome(
        ok=ok,
        action=PACK,
        message=(
            "This purchase was already made: you were charged once."
            if ok
            else (invoice.failure_reason or "The payment failed.")
        ),
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=credits if ok else 0,
        failure_code=invoice.failure_code,
        replayed=True,
    )


def buy(
    session: Session,
    account_id: int,
    pack_key: object,
    *,
    expected_preview: PackPreview,
    card: CardForm | None = None,
    gateway: PaymentGateway | None = None,
) -> Outcome:
    """Buy a pack with a gateway that charges directly (local test mode).

    With `card` that card is charged (and saved as the card on file when the
    account has none); without it the saved card is charged. `expected_preview`
    is what the user saw: the same one sent twice charges once; if the price
    changed meanwhile nothing is charged (PreviewOutdated). Declined: a failed
    invoice with the reason, nothing else (Outcome ok=False)."""
    account_id = _check_account_id(account_id)
    pack = check_pack(pack_key)
    if not isinstance(expected_preview, PackPreview) or expected_preview.account_id != account_id:
        raise PreviewOutdated("This confirmation is for another account. Open Buy credits again.")
    if expected_preview.pack_key != pack.key:
        raise PreviewOutdated("This confirmation is for a different pack. Please review it again.")
    _account(session, account_id)
    gateway = gateway or get_gateway()
    invoices.lock_account(session, account_id)
    done = invoices.find_by_key(session, expected_preview.idempotency_key)
    if done is not None:
        return _replay(done, expected_preview.credits)
    current = preview(session, account_id, pack.key)
    if not current.same_terms(expected_preview):
        raise PreviewOutdated(
            "The price of this pack changed since you saw it. Nothing was charged; please review it again."
        )
    card_on_file = card_to_charge(
        session,
        gateway,
        account_id,
        card,
        unsupported=PackError,
        no_card_message="Add a card to buy credits.",
    )
    payment = _charge(
        session,
        gateway,
        account_id,
        card_on_file,
        pack.price_cents,
        f"Workroom {pack_line(pack)}",
        current.idempotency_key,
    )
    if payment.requires_action:
        # 3-D Secure: bought once the card holder confirms (billing/payment_confirmation.py).
        return _needs_confirmation(
            session,
            account_id,
            PACK,
            payment,
            pack_line(pack),
            {
                "pack": pack_details(pack),
                **_card_details(card_on_file, "if_none" if card else None),
            },
            "/credits",
        )
    if not payment.ok:
        invoice, _ = _write_invoice(
            session,
            account_id,
            kind=PACK,
            payment=payment,
            lines=[LineItem(pack_line(pack), payment.amount_cents)],
            subscription_id=None,
            plan_key=None,
            period_start=None,
            period_end=None,
        )
        return Outcome(
            ok=False,
            action=PACK,
            message=invoice.failure_reason or "The payment failed.",
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            amount_cents=invoice.amount_cents,
            failure_code=invoice.failure_code,
        )
    if card is not None and default_card(session, account_id) is None:
        store_card(session, account_id, card_on_file, gateway=gateway.name)
    return record_paid(session, account_id, pack, payment=payment)


def record_paid(
    session: Session,
    account_id: int,
    pack: CreditPack,
    *,
    payment: PaymentFacts,
    purchased_at: datetime | None = None,
) -> Outcome:
    """A paid pack: a paid invoice, the pack's credits granted (a Credit pack
    row, expiring 12 months after `purchased_at`), a receipt queued. Idempotent
    on payment.idempotency_key: a replay returns the first answer, credits once."""
    account_id = _check_account_id(account_id)
    if not payment.ok:
        raise PackError("Credits are added only after a successful payment.")
    invoices.lock_account(session, account_id)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, pack.credits)
    purchased_at = periods.as_utc(purchased_at or clock.now())
    expires_at = expiry_for(purchased_at)
    invoice, _ = _write_invoice(
        session,
        account_id,
        kind=PACK,
        payment=payment,
        lines=[LineItem(pack_line(pack), payment.amount_cents)],
        subscription_id=None,
        plan_key=None,
        period_start=None,
        period_end=None,
    )
    ledger.grant(
        session,
        account_id,
        pack.credits,
        action_type=ActionType.CREDIT_PACK,
        source=GrantSource.PACK,
        idempotency_key=f"pack-credits:{invoice.id}",
        expires_at=expires_at,
        reference_type="invoice",
        reference_id=str(invoice.id),
    )
    email = session.connection().execute(_email_stmt, {"aid": account_id}).scalar()
    if email is not None:
        receipts.queue_receipt(
            session,
            invoice,
            to_address=email,
            purchase=f"{pack_line(pack)}, expiring on "
            f"{formatting.format_date(expires_at, formatting.account_zone(session, account_id))}",
        )
    return Outcome(
        ok=True,
        action=PACK,
        message=f"{pack.credits:,} credits were added to your balance.",
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=pack.credits,
    )
