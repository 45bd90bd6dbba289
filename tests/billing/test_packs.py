"""Credit packs: one rule per test, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.factories import buy, pack_preview, spend
from tests.support.subscriptions import (
    DECLINED,
    FAILS_ON_CHARGE,
    VISA,
    at,
    balance,
    change,
    entries,
    grants_of,
    invoices_of,
    outbox_of,
    preview,
    sign_up,
    subscribe,
)
from workroom_app.billing import ledger, packs, subscriptions
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.models import ActionType, GrantSource

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_default_packs_come_from_the_catalog():
    from workroom_app.billing.catalog import load_catalog

    cat = load_catalog()
    assert [(p.credits, p.price_cents) for p in cat.packs] == [
        (500, 600),
        (2000, 2000),
        (6000, 5000),
    ]
    assert cat.pack_expiry_months == 12


def test_a_pack_on_free_adds_its_credits_an_invoice_and_a_receipt(engine):
    with at(T0):
        acct = sign_up(engine)
        out = buy(engine, acct)
    assert out.ok and out.credits_added == 500
    assert balance(engine, acct) == 50 + 500
    assert entries(engine, acct)[-1] == (ActionType.CREDIT_PACK.value, 500)
    [inv] = invoices_of(engine, acct)
    assert (inv.kind, inv.status, inv.amount_cents, inv.number) == (
        "pack",
        "paid",
        600,
        f"WR-{acct}-0001",
    )
    assert (inv.card_brand, inv.card_last4) == ("visa", "4242")
    [mail] = outbox_of(engine, acct)
    assert mail.invoice_id == inv.id and "Credit pack: 500 credits" in mail.body_text
    # Saved as the card on file, since the account had none.
    with read_session(engine) as s:
        assert subscriptions.default_card(s, acct).last4 == "4242"
        assert check_ledger(s) == []


def test_pack_credits_expire_twelve_months_after_purchase(engine):
    with at(T0):
        acct = sign_up(engine)
        buy(engine, acct)
    pack_grant = [g for g in grants_of(engine, acct) if g.source == GrantSource.PACK.value][0]
    assert pack_grant.expires_at.astimezone(UTC) == datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
    assert pack_grant.subscription_id is None
    with at(datetime(2027, 3, 10, 9, 0, 1, tzinfo=UTC)), write_session(engine) as s:
        ledger.expire_due(s)
    assert balance(engine, acct) == 50
    assert entries(engine, acct)[-1] == (ActionType.EXPIRY.value, -500)


def test_pack_credits_are_spent_after_plan_credits(engine):
    with at(T0):
        acct = sign_up(engine)
        buy(engine, acct)  # 500, expiring in 12 months
        subscribe(engine, acct, "starter")  # 800, expiring in a month
        spend(engine, acct, 700, "d1")
    by_source = {g.source: g.amount_left for g in grants_of(engine, acct)}
    assert by_source[GrantSource.SUBSCRIPTION.value] == 100
    assert by_source[GrantSource.PACK.value] == 500
    assert by_source[GrantSource.TRIAL.value] == 50  # never expires: spent last
    with at(T0):
        spend(engine, acct, 300, "d2")
    by_source = {g.source: g.amount_left for g in grants_of(engine, acct)}
    assert by_source[GrantSource.SUBSCRIPTION.value] == 0
    assert by_source[GrantSource.PACK.value] == 300
    assert by_source[GrantSource.TRIAL.value] == 50


def test_a_downgrade_burns_plan_credits_only_and_keeps_packs(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "pro")
        buy(engine, acct, "credits_2000", card=None)  # the saved card
        p = preview(engine, acct, "starter")
        assert p.credits_burned == 3000
        out = change(engine, acct, "starter", expected=p)
    assert out.ok and out.credits_burned == 3000
    assert balance(engine, acct) == 50 + 2000 + 800


def test_the_end_of_a_plan_keeps_packs(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")
        buy(engine, acct, card=None)
        with write_session(engine) as s:
            subscriptions.cancel(s, acct)
    with at(T0 + timedelta(days=40)):
        subscriptions.renew_due(engine)
    assert subscriptions_status(engine, acct) == "free"
    assert balance(engine, acct) == 50 + 500


def subscriptions_status(engine, acct):
    with read_session(engine) as s:
        return subscriptions.summary(s, acct).status


def test_a_double_click_charges_once(engine):
    with at(T0):
        acct = sign_up(engine)
        p = pack_preview(engine, acct)
        first = buy(engine, acct, expected=p)
        second = buy(engine, acct, expected=p)
    assert first.ok and second.ok and second.replayed
    assert balance(engine, acct) == 550
    assert len(invoices_of(engine, acct)) == 1
    # A new purchase after it is a new key: a second pack is a second charge.
    with at(T0):
        third = buy(engine, acct)
    assert third.ok and not third.replayed and balance(engine, acct) == 1050


@pytest.mark.parametrize("card", [DECLINED, FAILS_ON_CHARGE])
def test_a_declined_card_writes_a_failed_invoice_and_nothing_else(engine, card):
    with at(T0):
        acct = sign_up(engine)
        out = buy(engine, acct, card=card)
    assert not out.ok and out.message
    assert balance(engine, acct) == 50
    [inv] = invoices_of(engine, acct)
    assert (inv.kind, inv.status) == ("pack", "failed") and inv.failure_reason
    assert outbox_of(engine, acct) == []
    # Retrying is a new payment, not the failed one replayed.
    with at(T0):
        again = buy(engine, acct, card=VISA)
    assert again.ok and balance(engine, acct) == 550
    # A failed attempt takes no invoice number: numbers stay gapless over paid invoices.
    assert [i.number for i in invoices_of(engine, acct)] == [None, f"WR-{acct}-0001"]


def test_an_invalid_card_is_refused_before_anything_is_written(engine):
    with at(T0):
        acct = sign_up(engine)
        with pytest.raises(subscriptions.CardRejected):
            buy(
                engine, acct, card=CardForm("4242 4242 4242 4241", 12, 2030, "123", "Ann")
            )  # fails Luhn
    assert invoices_of(engine, acct) == [] and balance(engine, acct) == 50


@pytest.mark.parametrize(
    "bad", ["credits_501", "", None, 500, -1, 1.5, "../x", ["credits_500"], "x" * 500]
)
def test_a_forged_pack_key_is_refused(engine, bad):
    acct = sign_up(engine)
    with pytest.raises(packs.UnknownPack):
        pack_preview(engine, acct, bad)
    good = pack_preview(engine, acct)
    with pytest.raises(packs.PackError), write_session(engine) as s:
        packs.buy(s, acct, bad, card=VISA, expected_preview=good)
    assert invoices_of(engine, acct) == [] and balance(engine, acct) == 50


def test_a_preview_for_another_pack_or_account_or_price_is_refused(engine):
    import dataclasses

    acct, other = sign_up(engine), sign_up(engine)
    p = pack_preview(engine, acct)
    for forged, pack_key, who in [
        (p, "credits_2000", acct),  # the preview of the 500 pack paying for the 2,000 one
        (pack_preview(engine, other), "credits_500", acct),  # someone else's preview
        (dataclasses.replace(p, charge_cents=1), "credits_500", acct),  # a cheaper price
        (dataclasses.replace(p, credits=6000), "credits_500", acct),  # more credits
    ]:
        with pytest.raises(subscriptions.PreviewOutdated), write_session(engine) as s:
            packs.buy(s, who, pack_key, card=VISA, expected_preview=forged)
    assert invoices_of(engine, acct) == [] and balance(engine, acct) == 50


def test_no_saved_card_asks_for_one(engine):
    acct = sign_up(engine)
    with pytest.raises(subscriptions.NoPaymentMethod):
        buy(engine, acct, card=None)


def test_buying_with_a_new_card_keeps_the_card_on_file(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "starter")  # Visa 4242 on file
        buy(engine, acct, card=CardForm("5555 5555 5555 4444", 12, 2030, "123", "Ann"))
    with read_session(engine) as s:
        assert subscriptions.default_card(s, acct).last4 == "4242"
    assert [i.card_last4 for i in invoices_of(engine, acct)] == ["4242", "4444"]


def test_invoice_numbers_stay_gapless_across_kinds(engine):
    with at(T0):
        acct = sign_up(engine)
        buy(engine, acct)
        subscribe(engine, acct, "starter")
        buy(engine, acct, "credits_6000", card=None)
    assert [(i.seq, i.kind) for i in invoices_of(engine, acct)] == [
        (1, "pack"),
        (2, "activation"),
        (3, "pack"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "price_cents = 600",
            "price_cents = 10",
            "packs.credits_500.price_cents: must be at least 50",
        ),
        ("credits = 500\n", "credits = -500\n", "packs.credits_500.credits: must be at least 1"),
        (
            "credits = 500\n",
            "credits = 2000\n",
            "packs.credits_2000.credits: another pack already has this many credits",
        ),
        (
            "credits = 500\n",
            'credits = "500"\n',
            "packs.credits_500.credits: must be a whole number",
        ),
        (
            "price_cents = 600",
            "price_cents = 6.5",
            "packs.credits_500.price_cents: must be a whole number",
        ),
        ('label = "500 credits"', "", "packs.credits_500.label: is required"),
        (
            "[packs.credits_500]",
            "[packs.Credits-500]",
            "packs.Credits-500: a pack key must be lowercase",
        ),
        (
            "pack_expiry_months = 12",
            "pack_expiry_months = 0",
            "pack_expiry_months: must be at least 1",
        ),
        (
            "broken_result_refunds_per_month = 3",
            "broken_result_refunds_per_month = -1",
            "broken_result_refunds_per_month: must be at least 0",
        ),
    ],
)
def test_a_bad_pack_in_the_catalog_stops_start_up_naming_the_field(tmp_path, old, new, message):
    from tests.support.catalog_files import DEFAULT_FILE, replace_once, write_catalog
    from workroom_app.billing.catalog import CatalogError, load_catalog

    path = write_catalog(tmp_path, replace_once(DEFAULT_FILE.read_text(), old, new))
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert message in str(err.value)
