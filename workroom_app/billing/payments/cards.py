"""Card checks for the local test-mode gateway.

What a card form needs before anything is charged: the number passes the Luhn
check and belongs to a brand we take, the expiry is not in the past, and the
CVC has the brand's length. Stripe's published test numbers behave as they do
in Stripe's test mode: the success numbers pay, the decline numbers are refused
with Stripe's reasons, and 4000 0000 0000 0341 attaches fine but fails every
charge (how the demo and the tests make a renewal fail).

Only brand, last 4 and expiry ever leave this module; the number and CVC are
checked and dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from workroom_app.billing import clock


class Brand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    JCB = "jcb"
    UNIONPAY = "unionpay"
    DINERS = "diners"


BRAND_LABELS: dict[str, str] = {
    Brand.VISA: "Visa",
    Brand.MASTERCARD: "Mastercard",
    Brand.AMEX: "American Express",
    Brand.DISCOVER: "Discover",
    Brand.JCB: "JCB",
    Brand.UNIONPAY: "UnionPay",
    Brand.DINERS: "Diners Club",
}

# Lengths each brand issues (ISO/IEC 7812 ranges as the networks publish them).
_BRAND_LENGTHS: dict[Brand, frozenset[int]] = {
    Brand.VISA: frozenset({13, 16, 19}),
    Brand.MASTERCARD: frozenset({16}),
    Brand.AMEX: frozenset({15}),
    Brand.DISCOVER: frozenset({16, 17, 18, 19}),
    Brand.JCB: frozenset({16, 17, 18, 19}),
    Brand.UNIONPAY: frozenset({16, 17, 18, 19}),
    Brand.DINERS: frozenset({14, 15, 16, 17, 18, 19}),
}


def _prefix_in(number: str, length: int, low: int, high: int) -> bool:
    return len(number) >= length and low <= int(number[:length]) <= high


def detect_brand(number: str) -> Brand | None:
    """The brand a card number's prefix (IIN) belongs to, or None."""
    if not number.isdigit():
        return None
    if number.startswith("4"):
        return Brand.VISA
    if _prefix_in(number, 2, 51, 55) or _prefix_in(number, 4, 2221, 2720):
        return Brand.MASTERCARD
    if number.startswith(("34", "37")):
        return Brand.AMEX
    if _prefix_in(number, 4, 3528, 3589):
        return Brand.JCB
    if number.startswith(("36", "38", "39", "3095")) or _prefix_in(number, 3, 300, 305):
        return Brand.DINERS
    if number.startswith(("6011", "65")) or _prefix_in(number, 3, 644, 649):
        return Brand.DISCOVER
    if number.startswith("62") or number.startswith("81"):
        return Brand.UNIONPAY
    return None


def cvc_length(brand: Brand | str) -> int:
    return 4 if brand == Brand.AMEX else 3


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or len(number) < 12:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class Behaviour(StrEnum):
    """How a test card behaves, kept by the gateway against the card's token."""

    OK = "ok"
    DECLINE_GENERIC = "decline_generic"
    DECLINE_INSUFFICIENT_FUNDS = "decline_insufficient_funds"
    DECLINE_EXPIRED = "decline_expired"
    DECLINE_INCORRECT_CVC = "decline_incorrect_cvc"
    DECLINE_LOST = "decline_lost"
    DECLINE_STOLEN = "decline_stolen"
    DECLINE_PROCESSING_ERROR = "decline_processing_error"
    # Attaches to the customer, then every charge fails (Stripe's ...0341).
    CHARGE_FAILS = "charge_fails"
    # 3-D Secure (Stripe's authentication test cards): the card holder must
    # confirm the payment. ...3184 asks every time, off-session charges too;
    # ...3155 asks for payments made on the page and lets off-session charges
    # (renewals, auto top-up) through, like a card set up for later use.
    AUTH_ALWAYS = "auth_always"
    AUTH_ON_SESSION = "auth_on_session"


@dataclass(frozen=True)
class Decline:
    code: str  # Stripe's decline/error code
    message: str  # what the user reads


DECLINES: dict[str, Decline] = {
    Behaviour.DECLINE_GENERIC: Decline("generic_decline", "Your card was declined."),
    Behaviour.DECLINE_INSUFFICIENT_FUNDS: Decline(
        "insufficient_funds", "Your card has insufficient funds."
    ),
    Behaviour.DECLINE_EXPIRED: Decline("expired_card", "Your card has expired."),
    Behaviour.DECLINE_INCORRECT_CVC: Decline(
        "incorrect_cvc", "Your card's security code is incorrect."
    ),
    Behaviour.DECLINE_LOST: Decline("lost_card", "Your card was declined."),
    Behaviour.DECLINE_STOLEN: Decline("stolen_card", "Your card was declined."),
    Behaviour.DECLINE_PROCESSING_ERROR: Decline(
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    Behaviour.CHARGE_FAILS: Decline("generic_decline", "Your card was declined."),
}

# Stripe's published test-mode numbers that do not simply succeed.
TEST_CARD_BEHAVIOURS: dict[str, Behaviour] = {
    "4000000000000002": Behaviour.DECLINE_GENERIC,
    "4000000000009995": Behaviour.DECLINE_INSUFFICIENT_FUNDS,
    "4000000000000069": Behaviour.DECLINE_EXPIRED,
    "4000000000000127": Behaviour.DECLINE_INCORRECT_CVC,
    "4000000000009987": Behaviour.DECLINE_LOST,
    "4000000000009979": Behaviour.DECLINE_STOLEN,
    "4000000000000119": Behaviour.DECLINE_PROCESSING_ERROR,
    "4000000000000341": Behaviour.CHARGE_FAILS,
    "4000002760003184": Behaviour.AUTH_ALWAYS,
    "4000002500003155": Behaviour.AUTH_ON_SESSION,
}

# Stripe's published numbers that pay, one or more per brand (documentation
# and tests; any other Luhn-valid number of a known brand pays too).
TEST_CARDS_OK: dict[str, Brand] = {
    "4242424242424242": Brand.VISA,
    "4000056655665556": Brand.VISA,
    "5555555555554444": Brand.MASTERCARD,
    "2223003122003222": Brand.MASTERCARD,
    "5200828282828210": Brand.MASTERCARD,
    "5105105105105100": Brand.MASTERCARD,
    "378282246310005": Brand.AMEX,
    "371449635398431": Brand.AMEX,
    "6011111111111117": Brand.DISCOVER,
    "6011000990139424": Brand.DISCOVER,
    "3056930009020004": Brand.DINERS,
    "36227206271667": Brand.DINERS,
    "3566002020360505": Brand.JCB,
    "6200000000000005": Brand.UNIONPAY,
}


def behaviour_for(number: str) -> Behaviour:
    return TEST_CARD_BEHAVIOURS.get(number, Behaviour.OK)


@dataclass(frozen=True)
class CardDetails:
    """What may be kept of a card: never the number, never the CVC."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int
    behaviour: str = Behaviour.OK


@dataclass(frozen=True)
class CardCheck:
    """The outcome of checking a card form: `card` when ok, else which field is
    wrong (number, expiry, cvc, name), a code and a message for the user."""

    ok: bool
    card: CardDetails | None = None
    field: str | None = None
    code: str | None = None
    message: str | None = None


class CardInvalid(ValueError):
    """A card form that cannot be charged (before any payment is attempted)."""

    def __init__(self, check: CardCheck) -> None:
        self.check = check
        self.field = check.field
        self.code = check.code
        super().__init__(check.message)


_SEPARATORS = re.compile(r"[\s-]")


def _bad(field: str, code: str, message: str) -> CardCheck:
    return CardCheck(ok=False, field=field, code=code, message=message)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 4:
        return int(value.strip())
    return None


def parse_expiry(text: str) -> tuple[int, int] | None:
    """ "MM/YY", "MM / YYYY" or "MMYY" as typed into a card form."""
    if not isinstance(text, str):
        return None
    m = re.fullmatch(r"\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*", text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


def check_card(
    number: object,
    exp_month: object,
    exp_year: object,
    cvc: object,
    *,
    now: datetime | None = None,
) -> CardCheck:
    """Check a card form. Spaces and dashes in the number are ignored; a two-digit
    year means 20YY. Expiry runs to the end of its month (as printed cards do)."""
    if not isinstance(number, str):
        return _bad("number", "invalid_number", "Enter your card number.")
    digits = _SEPARATORS.sub("", number)
    if not digits:
        return _bad("number", "invalid_number", "Enter your card number.")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        return _bad("number", "invalid_number", "Your card number is incomplete or invalid.")
    if not luhn_valid(digits):
        return _bad("number", "incorrect_number", "Your card number is invalid.")
    brand = detect_brand(digits)
    if brand is None:
        return _bad(
            "number",
            "unsupported_brand",
            "We accept Visa, Mastercard, American Express, Discover, JCB, UnionPay and Diners Club.",
        )
    if len(digits) not in _BRAND_LENGTHS[brand]:
        return _bad("number", "invalid_number", "Your card number is incomplete or invalid.")

    month = _as_int(exp_month)
    year = _as_int(exp_year)
    if month is None or year is None:
        return _bad("expiry", "invalid_expiry", "Enter the expiry date as MM/YY.")
    if not 1 <= month <= 12:
        return _bad("expiry", "invalid_expiry_month", "Your card's expiration month is invalid.")
    if year < 100:
        year += 2000
    today = (now or clock.now()).date()
    if (year, month) < (today.year, today.month):
        return _bad("expiry", "invalid_expiry_year", "Your card's expiration date is in the past.")
    if year > today.year + 50:
        return _bad("expiry", "invalid_expiry_year", "Your card's expiration year is invalid.")

    want = cvc_length(brand)
    if not isinstance(cvc, str) or not cvc.strip():
        return _bad("cvc", "invalid_cvc", "Enter your card's security code.")
    code = cvc.strip()
    if not code.isdigit() or len(code) != want:
        return _bad(
            "cvc",
            "invalid_cvc",
            f"Your card's security code should be {want} digits"
            + (" (on the front of an American Express card)." if want == 4 else "."),
        )
    return CardCheck(
        ok=True,
        card=CardDetails(
            brand=brand.value,
            last4=digits[-4:],
            exp_month=month,
            exp_year=year,
            behaviour=behaviour_for(digits).value,
        ),
    )


def require_valid_card(
    number: object,
    exp_month: object,
    exp_year: object,
    cvc: object,
    *,
    now: datetime | None = None,
) -> CardDetails:
    """check_card, raising CardInvalid (with the user message) when it fails."""
    result = check_card(number, exp_month, exp_year, cvc, now=now)
    if not result.ok:
        raise CardInvalid(result)
    assert result.card is not None
    return result.card


def decline_for(behaviour: str, *, on_attach: bool) -> Decline | None:
    """The decline a card with this behaviour meets, or None when it goes through.

    Like Stripe: the decline numbers are refused both when saved and when
    charged; the "charge fails" number is saved fine and refused on charge."""
    if behaviour in (Behaviour.OK, Behaviour.AUTH_ALWAYS, Behaviour.AUTH_ON_SESSION):
        return None  # authentication is asked for when charged (needs_authentication)
    if on_attach and behaviour == Behaviour.CHARGE_FAILS:
        return None
    return DECLINES.get(behaviour, DECLINES[Behaviour.DECLINE_GENERIC])


def needs_authentication(behaviour: str, *, off_session: bool) -> bool:
    """Whether a charge on a card with this behaviour waits for the card holder
    to confirm it (3-D Secure) instead of going through."""
    if behaviour == Behaviour.AUTH_ALWAYS:
        return True
    return behaviour == Behaviour.AUTH_ON_SESSION and not off_session
