"""The card on file: the local card form (read from the browser), storing a card, picking
the card a payment charges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlmodel import Session, select

from workroom_app.billing import clock
from workroom_app.billing.payments import cards, get_gateway
from workroom_app.billing.payments.cards import CardInvalid
from workroom_app.billing.payments.gateway import CardOnFile
from workroom_app.billing.payments.local import CardDeclined
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


# The card form as the browser sends it (our checkout, credits and subscription pages).
FIELDS = ("number", "expiry", "cvc", "name")
# Generous upper bounds on what a card form field can hold; longer is refused unread.
_MAX_FIELD = {"number": 32, "expiry": 9, "cvc": 8, "name": 100}


class CardFormError(SubscriptionError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def read_card_form(form_data: object) -> CardForm:
    """The raw form as the browser sent it -> a CardForm, or CardFormError naming the field.

    Only shape is checked here (strings of sane length, MM/YY, a name); the
    card itself (Luhn, brand, expiry, CVC length) is checked by payments/cards.py."""
    if not isinstance(form_data, dict):
        raise CardFormError("Fill in the card form.", "number")
    values: dict[str, str] = {}
    for name in FIELDS:
        value = form_data.get(name, "")
        if not isinstance(value, str) or len(value) > _MAX_FIELD[name]:
            raise CardFormError(f"The {name if name != 'cvc' else 'CVC'} field is invalid.", name)
        values[name] = value.strip()
    if not values["number"]:
        raise CardFormError("Enter your card number.", "number")
    expiry = cards.parse_expiry(values["expiry"])
    if expiry is None:
        raise CardFormError("Enter the expiry date as MM/YY.", "expiry")
    if not values["cvc"]:
        raise CardFormError("Enter your card's security code.", "cvc")
    if not values["name"]:
        raise CardFormError("Enter the name on the card.", "name")
    return CardForm(
        number=values["number"],
        exp_month=expiry[0],
        exp_year=expiry[1],
        cvc=values["cvc"],
        name=values["name"],
    )


def card_form_field(exc: Exception) -> str:
    field = getattr(exc, "field", None) or "form"
    # cards.py names the expiry check "expiry"; our form field is the same.
    return field if field in FIELDS else "form"


def card_to_charge(
    session: Session,
    gateway: Any,  # a gateway that can tokenize a typed card (the local one)
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
    return cast(PaymentMethod, stored)


def store_card(
    session: Session, account_id: int, card: CardOnFile | PaymentMethod, *, gateway: str = "local"
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


def save_card(
    session: Session, account_id: int, form: CardForm, *, gateway: Any = None
) -> PaymentMethod:
    """Replace the card on file from the local card form. Raises CardRejected
    (bad number/expiry/CVC, or a decline number) and then saves nothing."""
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
