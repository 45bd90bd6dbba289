"""Card checks for the local test mode (PRODUCT_RULES §6: Visa, Mastercard,
American Express and others) and what the local gateway keeps of a card."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from workroom_app.billing import accounts, clock
from workroom_app.billing.payments import cards, get_gateway
from workroom_app.billing.payments.cards import Brand, check_card
from workroom_app.billing.payments.local import CardDeclined, LocalGateway
from workroom_app.db import write_session

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

STRIPE_OK = {
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


def _check(number, month=12, year=2030, cvc=None):
    if cvc is None:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
    return check_card(number, month, year, cvc, now=NOW)


@pytest.mark.parametrize("number,brand", sorted(STRIPE_OK.items()))
def test_stripe_test_cards_are_accepted_with_their_brand(number, brand):
    result = _check(number)
    assert result.ok, result.message
    assert result.card.brand == brand
    assert result.card.last4 == number[-4:]
    assert result.card.behaviour == cards.Behaviour.OK


def test_spaces_and_dashes_in_the_number_are_ignored():
    assert _check("4242 4242-4242 4242").card.last4 == "4242"


@pytest.mark.parametrize(
    "number,code,message",
    [
        ("4000000000000002", "generic_decline", "Your card was declined."),
        ("4000000000009995", "insufficient_funds", "Your card has insufficient funds."),
        ("4000000000000069", "expired_card", "Your card has expired."),
        ("4000000000000127", "incorrect_cvc", "Your card's security code is incorrect."),
    ],
)
def test_stripe_decline_numbers_are_declined_with_their_reason(number, code, message):
    result = _check(number)
    assert result.ok  # a well-formed card: it is the issuer that declines
    decline = cards.decline_for(result.card.behaviour, on_attach=False)
    assert (decline.code, decline.message) == (code, message)
    assert cards.decline_for(result.card.behaviour, on_attach=True) == decline


def test_0341_attaches_but_every_charge_fails():
    behaviour = _check("4000000000000341").card.behaviour
    assert cards.decline_for(behaviour, on_attach=True) is None
    assert cards.decline_for(behaviour, on_attach=False).message == "Your card was declined."


@pytest.mark.parametrize(
    "number,field,code",
    [
        ("4242424242424241", "number", "incorrect_number"),  # Luhn fails
        ("", "number", "invalid_number"),
        ("4242", "number", "invalid_number"),
        ("4242abcd42424242", "number", "invalid_number"),
        ("9999999999999995", "number", "unsupported_brand"),
        ("42424242424242424242424", "number", "invalid_number"),
    ],
)
def test_bad_numbers_are_refused_with_a_message(number, field, code):
    result = _check(number)
    assert not result.ok
    assert (result.field, result.code) == (field, code)
    assert result.message


def test_luhn():
    assert cards.luhn_valid("79927398713") is False  # too short for a card
    assert cards.luhn_valid("4242424242424242")
    assert not cards.luhn_valid("4242424242424243")


def test_expiry_must_not_be_in_the_past_by_the_clock():
    assert _check("4242424242424242", 11, 2026).ok  # this month still works
    past = _check("4242424242424242", 10, 2026)
    assert (past.ok, past.field) == (False, "expiry")
    assert "past" in past.message
    assert _check("4242424242424242", 1, 27).card.exp_year == 2027  # two-digit year
    assert _check("4242424242424242", 13, 2030).code == "invalid_expiry_month"
    assert _check("4242424242424242", "xx", 2030).field == "expiry"
    with clock.pinned(datetime(2031, 1, 1, tzinfo=UTC)):
        assert not check_card("4242424242424242", 12, 2030, "123").ok


def test_cvc_length_depends_on_the_brand():
    assert _check("378282246310005", cvc="1234").ok
    amex3 = _check("378282246310005", cvc="123")
    assert (amex3.ok, amex3.field) == (False, "cvc")
    assert "4 digits" in amex3.message
    assert _check("4242424242424242", cvc="123").ok
    assert not _check("4242424242424242", cvc="1234").ok
    assert not _check("4242424242424242", cvc="12a").ok
    assert not _check("4242424242424242", cvc="").ok


@pytest.mark.parametrize("junk", [None, 4242424242424242, ["4242"], {"n": 1}])
def test_non_text_numbers_are_refused(junk):
    result = check_card(junk, 12, 2030, "123", now=NOW)
    assert not result.ok and result.field == "number"


def test_parse_expiry():
    assert cards.parse_expiry("12/30") == (12, 30)
    assert cards.parse_expiry("04 / 2031") == (4, 2031)
    assert cards.parse_expiry("0431") == (4, 31)
    assert cards.parse_expiry("13-30") is None


def test_get_gateway_defaults_to_local():
    assert isinstance(get_gateway(), LocalGateway)
    assert get_gateway("local").name == "local"


def test_only_brand_last4_and_expiry_are_stored_never_number_or_cvc(engine):
    with clock.pinned(NOW), write_session(engine) as s:
        account = accounts.sign_up(s, "card@example.com", "correct horse battery")
        gw = LocalGateway()
        card = gw.attach(s, account.id, "4000 0566 5566 5556", "12", "2030", "987")
        from workroom_app.billing.subscriptions import store_card

        store_card(s, account.id, card)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "5556", 12, 2030)
    assert card.gateway_ref.startswith("card_local_") and "5556" not in card.gateway_ref
    with engine.connect() as conn:
        for table in ("payment_method", "local_card"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert rows
            dump = " ".join(str(v) for row in rows for v in row)
            assert "4000056655665556" not in dump and "987" not in dump


def test_decline_numbers_are_refused_when_saved(engine):
    with clock.pinned(NOW), write_session(engine) as s:
        account = accounts.sign_up(s, "dec@example.com", "correct horse battery")
        with pytest.raises(CardDeclined, match="insufficient funds"):
            LocalGateway().attach(s, account.id, "4000000000009995", 12, 2030, "123")
        assert LocalGateway().attach(s, account.id, "4000000000000341", 12, 2030, "123")


def test_local_charges_are_idempotent_and_deterministic(engine):
    with clock.pinned(NOW), write_session(engine) as s:
        account = accounts.sign_up(s, "chg@example.com", "correct horse battery")
        gw = LocalGateway()
        ok_card, _ = gw.tokenize(s, account.id, "4242424242424242", 12, 2030, "123")
        bad_card, _ = gw.tokenize(s, account.id, "4000000000000341", 12, 2030, "123")
        first = gw.charge(account.id, ok_card, 3000, "usd", "Pro", "k1", session=s)
        again = gw.charge(account.id, ok_card, 3000, "usd", "Pro", "k1", session=s)
        assert first.ok and first == again
        failed = gw.charge(account.id, bad_card, 3000, "usd", "Pro", "k2", session=s)
        assert not failed.ok and failed.failure_code == "generic_decline"
        other = accounts.sign_up(s, "other@example.com", "correct horse battery")
        other_account = gw.charge(other.id, ok_card, 3000, "usd", "Pro", "k3", session=s)
        assert not other_account.ok and other_account.failure_code == "card_not_found"
        from workroom_app.billing.payments.gateway import GatewayError

        with pytest.raises(GatewayError):
            gw.charge(account.id, ok_card, 4000, "usd", "Pro", "k1", session=s)
        with pytest.raises(GatewayError):
            gw.charge(account.id, ok_card, -5, "usd", "Pro", "k9", session=s)
        n = s.exec(text("SELECT count(*) FROM local_charge")).one()[0]
        assert n == 3
