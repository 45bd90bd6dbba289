"""The card on file: the local card form, storing a card, picking the card a payment
charges."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from workroom_app.billing import clock
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.cards import CardInvalid
from workroom_app.billing.payments.gateway import CardOnFile
from workroom_app.billing.subscriptions.errors import (
    CardRejected,
    NoPaymentMethod,
    SubscriptionError,
)
from workroom_app.billing.subscriptions.lookup import (
    _account,
    _check_account_id,
    _lock,
    default_card,
)
from workroom_app.models import PaymentMethod


@dataclass(frozen=True)
class CardForm:
    """A card typed into the local checkout form (never stored)."""

    number: str
    exp_month: int | str
    exp_year: int | str
    cvc: str
    name: str = ""


def card_to_charge(
    session: Session,
    gateway,
    account_id: int,
    card: CardForm | None,
    *,  # noqa: ANN001
    unsupported: type[Exception],
    no_card_message: str,
) -> PaymentMethod:
    """The card a payment charges: the one typed in (stored by the gateway; a refused number
    raises CardRejected naming the field) or, with none typed, the card on file."""
    if card is None:
        on_file = default_card(session, account_id)
        if on_file is None:
            raise NoPaymentMethod(no_card_message)
        return on_file
    if not hasattr(gateway, "tokenize"):
        raise unsupported("This payment provider takes cards on its own checkout page.")
    try:
        stored, _ = gateway.tokenize(
            session, account_id, card.number, card.exp_month, card.exp_year, card.cvc
        )
    except CardInvalid as exc:
        raise CardRejected(str(exc), field=exc.field, code=exc.code) from None
    return stored


def store_card(
    session: Session, account_id: int, card: CardOnFile, *, gateway: str = "local"
) -> PaymentMethod:
    """Make `card` the account's card on file (the previous one is kept, removed)."""
    now = clock.now()
    for old in session.exec(
        select(PaymentMethod).where(
            PaymentMethod.account_id == account_id, PaymentMethod.removed_at.is_(None)
        )
    ):
        old.is_default = False
        old.removed_at = now
        session.add(old)
    pm = PaymentMethod(
        account_id=account_id,
        gateway=gateway,
        gateway_ref=card.gateway_ref,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=True,
        created_at=now,
    )
    session.add(pm)
    session.flush()
    return pm


def save_card(session: Session, account_id: int, form: CardForm, *, gateway=None) -> PaymentMethod:
    """Replace the card on file from the local card form. Raises CardRejected
    (bad number/expiry/CVC, or a decline number) and then saves nothing."""
    from workroom_app.billing.payments.local import CardDeclined

    account_id = _check_account_id(account_id)
    _account(session, account_id)
    gateway = gateway or get_gateway()
    if not hasattr(gateway, "attach"):
        raise SubscriptionError("Cards are managed on the payment provider's page.")
    _lock(session, account_id)
    try:
        card = gateway.attach(
            session, account_id, form.number, form.exp_month, form.exp_year, form.cvc
        )
    except CardInvalid as exc:
        raise CardRejected(str(exc), field=exc.field, code=exc.code) from None
    except CardDeclined as exc:
        raise CardRejected(str(exc), field="number", code=exc.code) from None
    return store_card(session, account_id, card, gateway=gateway.name)
