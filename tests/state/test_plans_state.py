"""The Plans, Checkout and Subscription page states, driven through Reflex's
real event processing path (events queued on a BaseStateEventProcessor, as
the websocket handler does; what the handlers send back to the browser is
recorded). A browser can call any handler with anything: forged calls must
show a clear message and change nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from tests.support.pages import (
    BOTH_ENGINES,
    NOW,
    VISA,
    PlansTab,
    balance,
    invoices_of,
    make_user,
    runner,
    snapshot,
    subscribe,
)
from workroom_app.billing import accounts, clock, formatting, ledger, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    ActionType,
    LedgerEntry,
    PaymentMethod,
    Subscription,
)
from workroom_app.state.checkout import CheckoutState
from workroom_app.state.plans import PlansState
from workroom_app.state.session import SessionState
from workroom_app.state.subscription import SubscriptionState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(PlansTab, now=NOW)


def live_sub(engine, account_id: int) -> Subscription | None:
    with read_session(engine) as s:
        return subscriptions.live_subscription(s, account_id)


def facts(st: PlansState) -> dict[str, str]:
    return {f.testid: f.value for f in st.dialog_facts}


# ------------------------------------------------------------------ Plans page


def test_plans_lists_the_catalog_with_the_current_plan_and_one_action_each(app_db):
    _, token = make_user(app_db, "free@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        st = await tab.state(PlansState)
        assert [c.key for c in st.cards] == ["free", "starter", "pro", "studio"]
        by_key = {c.key: c for c in st.cards}
        assert by_key["free"].is_current and by_key["free"].action == ""
        assert [by_key[k].action for k in ("starter", "pro", "studio")] == ["subscribe"] * 3
        assert by_key["starter"].price == "$10.00" and by_key["studio"].price == "$80.00"
        assert by_key["pro"].credits == "3,000 credits every month"
        assert "Unlimited Flux Schnell images" in by_key["pro"].features
        assert "Unlimited Flux Schnell and Flux Pro images" in by_key["studio"].features
        assert "Unlimited Standard voiceovers" in by_key["studio"].features
        assert "8 generations at a time" in by_key["studio"].features
        assert "Videos up to 5 s" in by_key["free"].features

    run(scenario)


def test_subscribe_preview_shows_the_engines_numbers_then_goes_to_checkout(app_db):
    account_id, token = make_user(app_db, "sub@example.com")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        await tab.send(PlansState, "open_action", plan_key="pro")
        st = await tab.state(PlansState)
        assert st.dialog_open and st.dialog_kind == "subscribe"
        with read_session(app_db) as s:
            p = subscriptions.preview_subscribe(s, account_id, "pro")
        f = facts(st)
        assert f["confirm-charge"] == "$30.00" and p.charge_cents == 3000
        assert f["confirm-credits-added"] == "+3,000"
        assert f["confirm-renewal-date"] == formatting.format_date(p.renewal_date)
        sent = await tab.send(PlansState, "confirm")
        assert "/checkout?plan=pro" in sent
        assert not (await tab.state(PlansState)).dialog_open

    run(scenario)
    assert snapshot(app_db, account_id) == before  # previewing and going to checkout charge nothing


@BOTH_ENGINES
def test_upgrade_confirm_applies_exactly_the_preview_and_twice_charges_once(app_db):
    account_id, token = make_user(app_db, "up@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        st = await tab.state(PlansState)
        assert {c.key: c.action for c in st.cards} == {
            "free": "",
            "starter": "cancel",
            "pro": "upgrade",
            "studio": "upgrade",
        }
        await tab.send(PlansState, "open_action", plan_key="pro")
        st = await tab.state(PlansState)
        f = facts(st)
        assert st.dialog_kind == "upgrade"
        assert f["confirm-charge"] == "$20.00" and f["confirm-credits-added"] == "+2,200"
        assert f["confirm-balance-after"] == "3,050"  # 50 trial + 800 + 2,200
        pending = dict(st._pending)
        sent = await tab.send(PlansState, "confirm")
        assert "You're on Pro" in sent
        # A replayed confirm (double click, or forged) of the same preview.
        st = await tab.state(PlansState)
        st._pending = pending
        await tab.send(PlansState, "confirm")
        session = await tab.state(SessionState)
        assert session.balance == 3050 and session.plan_key == "pro"

    run(scenario)
    paid = [i for i in invoices_of(app_db, account_id) if i.kind == "upgrade"]
    assert [(i.status, i.amount_cents) for i in paid] == [("paid", 2000)]
    assert balance(app_db, account_id) == 3050
    assert live_sub(app_db, account_id).plan_key == "pro"


@BOTH_ENGINES
def test_a_change_between_preview_and_confirm_is_refused_and_shown_again(app_db):
    account_id, token = make_user(app_db, "race@example.com")
    subscribe(app_db, account_id, "pro")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        await tab.send(PlansState, "open_action", plan_key="starter")
        st = await tab.state(PlansState)
        assert facts(st)["confirm-credits-burned"] == "\u22123,000"
        # A generation spends credits in another tab before the user confirms.
        with clock.pinned(NOW), write_session(app_db) as s:
            ledger.debit(s, account_id, 100, feature="image", idempotency_key="gen-1")
        before = snapshot(app_db, account_id)
        await tab.send(PlansState, "confirm")
        assert snapshot(app_db, account_id) == before
        st = await tab.state(PlansState)
        assert st.dialog_open and "changed since you reviewed" in st.dialog_error
        assert facts(st)["confirm-credits-burned"] == "\u22122,900"  # the new numbers
        await tab.send(PlansState, "confirm")
        st = await tab.state(PlansState)
        assert not st.dialog_open

    run(scenario)
    sub = live_sub(app_db, account_id)
    assert sub.plan_key == "starter"
    assert balance(app_db, account_id) == 50 + 800  # trial kept, Pro burned, Starter granted
    with read_session(app_db) as s:
        burn = s.exec(
            select(LedgerEntry).where(
                LedgerEntry.account_id == account_id,
                LedgerEntry.action_type == ActionType.PLAN_CHANGE,
            )
        ).all()
    assert [e.amount for e in burn] == [-2900]


def test_cancel_then_resume(app_db):
    account_id, token = make_user(app_db, "cr@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        await tab.send(PlansState, "open_action", plan_key="starter")
        st = await tab.state(PlansState)
        assert st.dialog_kind == "cancel" and facts(st)["confirm-charge"] == "$0.00"
        assert facts(st)["confirm-credits-burned"] == "800"
        await tab.send(PlansState, "confirm")
        assert live_sub(app_db, account_id).cancel_at_period_end
        st = await tab.state(PlansState)
        assert {c.key: c.action for c in st.cards}["starter"] == "resume"
        await tab.send(PlansState, "open_action", plan_key="starter")
        assert (await tab.state(PlansState)).dialog_kind == "resume"
        await tab.send(PlansState, "confirm")
        assert not live_sub(app_db, account_id).cancel_at_period_end

    run(scenario)
    assert balance(app_db, account_id) == 850


@pytest.mark.parametrize(
    "forged", ["enterprise", "", "x" * 500, 7, None, ["pro"], {"key": "pro"}, -1000]
)
def test_forged_plan_keys_get_a_clear_message_and_change_nothing(app_db, forged):
    account_id, token = make_user(app_db, "forge@example.com")
    subscribe(app_db, account_id, "starter")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        sent = await tab.send(PlansState, "open_action", plan_key=forged)
        st = await tab.state(PlansState)
        assert not st.dialog_open and st._pending is None
        assert "That plan does not exist" in sent
        await tab.send(PlansState, "confirm")

    run(scenario)
    assert snapshot(app_db, account_id) == before


def test_confirm_takes_no_price_from_the_browser(app_db):
    account_id, token = make_user(app_db, "neg@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        # No dialog open: a forged confirm, with or without a price, does nothing.
        await tab.send(PlansState, "confirm", charge_cents=-5000, refused=TypeError)
        await tab.send(PlansState, "confirm")
        assert len(invoices_of(app_db, account_id)) == 1
        await tab.send(PlansState, "open_action", plan_key="studio")
        # A forged price on the real confirm is refused by the event layer.
        await tab.send(PlansState, "confirm", charge_cents=-5000, refused=TypeError)
        assert len(invoices_of(app_db, account_id)) == 1
        await tab.send(PlansState, "confirm")

    run(scenario)
    assert [i.amount_cents for i in invoices_of(app_db, account_id)] == [1000, 7000]


def test_free_card_and_current_card_refuse_their_missing_actions(app_db):
    account_id, token = make_user(app_db, "noop@example.com")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        sent = await tab.send(PlansState, "open_action", plan_key="free")
        assert "Free is your current plan" in sent
        assert not (await tab.state(PlansState)).dialog_open

    run(scenario)
    assert snapshot(app_db, account_id) == before


# ------------------------------------------------------------------- Checkout


@BOTH_ENGINES
def test_checkout_with_a_visa_activates_the_plan_and_grants_credits(app_db):
    account_id, token = make_user(app_db, "visa@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/checkout?plan=starter", CheckoutState)
        st = await tab.state(CheckoutState)
        assert (
            st.ready
            and st.page_error == ""
            and st.charge_text == "$10.00"
            and st.credits_added_text == "800"
        )
        sent = await tab.send(CheckoutState, "submit", form_data=dict(VISA))
        assert "/subscription" in sent and "You're on Starter" in sent
        assert (await tab.state(SessionState)).balance == 850

    run(scenario)
    inv = invoices_of(app_db, account_id)
    assert [(i.status, i.amount_cents, i.card_brand, i.card_last4) for i in inv] == [
        ("paid", 1000, "visa", "4242")
    ]
    assert live_sub(app_db, account_id).plan_key == "starter"
    with read_session(app_db) as s:
        card = s.exec(select(PaymentMethod).where(PaymentMethod.account_id == account_id)).one()
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2030)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("4000000000000002", "Your card was declined."),
        ("4000000000009995", "Your card has insufficient funds."),
        ("4000000000000069", "Your card has expired."),
        ("4000000000000127", "Your card's security code is incorrect."),
    ],
)
def test_a_declined_card_shows_the_reason_and_writes_only_a_failed_payment(app_db, number, reason):
    account_id, token = make_user(app_db, "decl@example.com")
    before_subs, _, before_rows, before_cards, _, before_balance = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/checkout?plan=pro", CheckoutState)
        await tab.send(CheckoutState, "submit", form_data={**VISA, "number": number})
        st = await tab.state(CheckoutState)
        assert st.form_error == reason and st.ready

    run(scenario)
    subs, inv, rows, cards, _, bal = snapshot(app_db, account_id)
    assert (subs, rows, cards, bal) == (before_subs, before_rows, before_cards, before_balance)
    assert [(i[1], i[2]) for i in inv] == [("failed", 3000)]
    assert invoices_of(app_db, account_id)[0].failure_reason == reason


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({**VISA, "number": "4242 4242 4242 4241"}, "number_error", "Your card number is invalid."),
        (
            {**VISA, "expiry": "01/20"},
            "expiry_error",
            "Your card's expiration date is in the past.",
        ),
        ({**VISA, "expiry": "13/30"}, "expiry_error", "Your card's expiration month is invalid."),
        ({**VISA, "expiry": "soon"}, "expiry_error", "Enter the expiry date as MM/YY."),
        (
            {**VISA, "number": "378282246310005", "cvc": "123"},
            "cvc_error",
            "Your card's security code should be 4 digits (on the front of an American Express card).",
        ),
        ({**VISA, "cvc": "1234"}, "cvc_error", "Your card's security code should be 3 digits."),
        ({**VISA, "name": "  "}, "name_error", "Enter the name on the card."),
        ({**VISA, "number": 4242424242424242}, "number_error", "The number field is invalid."),
        ({**VISA, "cvc": ["123"]}, "cvc_error", "The CVC field is invalid."),
    ],
)
def test_card_form_mistakes_name_the_field_and_charge_nothing(app_db, form, field, message):
    account_id, token = make_user(app_db, "bad@example.com")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/checkout?plan=starter", CheckoutState)
        await tab.send(CheckoutState, "submit", form_data=form)
        st = await tab.state(CheckoutState)
        assert getattr(st, field) == message

    run(scenario)
    assert snapshot(app_db, account_id) == before


@pytest.mark.parametrize("query", ["plan=enterprise", "plan=free", "", "plan=" + "p" * 80])
def test_checkout_for_a_forged_plan_shows_a_clear_error(app_db, query):
    account_id, token = make_user(app_db, "cq@example.com")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/checkout?" + query, CheckoutState)
        st = await tab.state(CheckoutState)
        assert not st.ready and st.page_error
        assert "does not exist" in st.page_error or "not a paid plan" in st.page_error
        # Paying anyway (a forged submit) has nothing to pay for.
        await tab.send(CheckoutState, "submit", form_data=dict(VISA))
        await tab.send(CheckoutState, "pay_with_saved_card")

    run(scenario)
    assert snapshot(app_db, account_id) == before


def test_forged_form_payloads_change_nothing(app_db):
    account_id, token = make_user(app_db, "fp@example.com")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/checkout?plan=studio", CheckoutState)
        for payload in ("4242", ["x"], None, 12, {"price": -100}):
            await tab.send(CheckoutState, "submit", form_data=payload)
        st = await tab.state(CheckoutState)
        assert st.number_error or st.form_error

    run(scenario)
    assert snapshot(app_db, account_id) == before


def test_checkout_when_already_subscribed_says_so(app_db):
    account_id, token = make_user(app_db, "twice@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/checkout?plan=pro", CheckoutState)
        st = await tab.state(CheckoutState)
        assert "already have a plan" in st.page_error

    run(scenario)


# ---------------------------------------------------------------- Subscription


@BOTH_ENGINES
def test_subscription_page_shows_plan_card_and_every_payment(app_db):
    account_id, token = make_user(app_db, "hist@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", SubscriptionState)
        st = await tab.state(SubscriptionState)
        assert st.payments == [] and st.current_plan == "Free" and not st.has_card
        await tab.open("/checkout?plan=starter", CheckoutState)
        await tab.send(CheckoutState, "submit", form_data={**VISA, "number": "4000000000000002"})
        await tab.send(CheckoutState, "submit", form_data=dict(VISA))
        await tab.open("/subscription", SubscriptionState)
        st = await tab.state(SubscriptionState)
        assert st.current_plan == "Starter" and st.auto_renew
        assert st.renewal_text == "Dec 24, 2026" and st.renewal_amount == "$10.00"
        assert st.card_label.startswith("Visa ending in 4242")
        assert [(p.status, p.amount, p.card) for p in st.payments] == [
            ("paid", "$10.00", "Visa •••• 4242"),
            ("failed", "$10.00", "Visa •••• 0002"),
        ]
        assert st.payments[1].reason == "Your card was declined."
        assert st.payments[0].pdf == f"/api/invoices/{st.payments[0].id}/pdf"
        # The declined attempt is listed with its reason but is not an invoice.
        assert (st.payments[1].number, st.payments[1].pdf) == ("", "")
        assert st.payments[0].number.endswith("-0001")
        await tab.send(SubscriptionState, "open_invoice", invoice_id=st.payments[0].id)
        st = await tab.state(SubscriptionState)
        assert st.invoice_open and st.invoice.number == st.payments[0].number
        assert st.invoice_lines[0].amount == "$10.00"

    run(scenario)


@BOTH_ENGINES
def test_another_users_invoice_reads_as_not_found(app_db):
    owner_id, _ = make_user(app_db, "owner@example.com")
    subscribe(app_db, owner_id, "pro")
    theirs = invoices_of(app_db, owner_id)[0].id
    _, token = make_user(app_db, "snoop@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", SubscriptionState)
        # Whatever the browser sends as the id, the answer is the one for an id that does not
        # exist: nothing opens, and the page says so.
        for forged in (
            theirs,
            str(theirs),
            999999,
            -1,
            0,
            "1 OR 1=1",
            None,
            [theirs],
            True,
            10**30,
        ):
            sent = await tab.send(SubscriptionState, "open_invoice", invoice_id=forged)
            st = await tab.state(SubscriptionState)
            assert not st.invoice_open and st.invoice.number == ""
            assert "That invoice was not found." in sent, forged

    run(scenario)


def test_replace_card_validates_and_refuses_decline_numbers(app_db):
    account_id, token = make_user(app_db, "card@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", SubscriptionState)
        before = snapshot(app_db, account_id)
        await tab.send(
            SubscriptionState, "submit_card", form_data={**VISA, "number": "4000000000000002"}
        )
        st = await tab.state(SubscriptionState)
        assert st.number_error == "Your card was declined."
        await tab.send(SubscriptionState, "submit_card", form_data={**VISA, "expiry": "02/21"})
        assert (await tab.state(SubscriptionState)).expiry_error
        assert snapshot(app_db, account_id)[3] == before[3]
        sent = await tab.send(
            SubscriptionState,
            "submit_card",
            form_data={
                "number": "5555 5555 5555 4444",
                "expiry": "07/31",
                "cvc": "321",
                "name": "Ann",
            },
        )
        assert "Card saved" in sent
        st = await tab.state(SubscriptionState)
        assert st.card_label.startswith("Mastercard ending in 4444")

    run(scenario)
    with read_session(app_db) as s:
        live = s.exec(
            select(PaymentMethod).where(
                PaymentMethod.account_id == account_id, PaymentMethod.removed_at.is_(None)
            )
        ).all()
    assert [(c.brand, c.last4) for c in live] == [("mastercard", "4444")]


def test_signed_out_browsers_get_nothing(app_db):
    account_id, _ = make_user(app_db, "x@example.com")
    subscribe(app_db, account_id, "starter")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(SessionState, "guard")
        await tab.send(PlansState, "open_action", plan_key="pro")
        await tab.send(PlansState, "confirm")
        await tab.send(CheckoutState, "submit", form_data=dict(VISA))
        await tab.send(
            SubscriptionState, "open_invoice", invoice_id=invoices_of(app_db, account_id)[0].id
        )
        assert not (await tab.state(SubscriptionState)).invoice_open
        assert not (await tab.state(PlansState)).dialog_open

    run(scenario)
    assert snapshot(app_db, account_id) == before


@BOTH_ENGINES
def test_a_declined_upgrade_shows_the_reason_in_the_dialog_and_changes_only_a_failed_row(app_db):
    account_id, token = make_user(app_db, "declup@example.com")
    subscribe(app_db, account_id, "starter")
    with clock.pinned(NOW), write_session(app_db) as s:
        # Stripe's ...0341 attaches fine and fails every charge.
        subscriptions.save_card(s, account_id, CardForm("4000000000000341", 12, 2030, "123", "A"))
    subs, inv, rows, cards, _, bal = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        await tab.send(PlansState, "open_action", plan_key="studio")
        sent = await tab.send(PlansState, "confirm")
        assert "Your card was declined." in sent
        st = await tab.state(PlansState)
        assert st.dialog_open and st.dialog_error == "Your card was declined."
        assert (await tab.state(SessionState)).plan_key == "starter"

    run(scenario)
    after = snapshot(app_db, account_id)
    assert (after[0], after[2], after[3], after[5]) == (subs, rows, cards, bal)
    new = [i for i in invoices_of(app_db, account_id) if i.kind == "upgrade"]
    assert [(i.status, i.amount_cents, i.failure_reason) for i in new] == [
        ("failed", 7000, "Your card was declined.")
    ]


# -------------------------------------------------------------- Stripe mode


def test_stripe_mode_subscribe_goes_to_stripe_checkout_and_returns_active(app_db, stripe_world):
    account_id, token = make_user(app_db, "stripe@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        await tab.send(PlansState, "open_action", plan_key="pro")
        assert facts(await tab.state(PlansState))["confirm-charge"] == "$30.00"
        sent = await tab.send(PlansState, "confirm")
        session_id = next(iter(stripe_world.standin.sessions))
        assert f"https://checkout.stripe.com/c/pay/{session_id}" in sent
        # The local checkout page hands over to Stripe too.
        sent = await tab.open("/checkout?plan=pro", CheckoutState)
        assert "https://checkout.stripe.com/c/pay/" in sent
        assert live_sub(app_db, account_id) is None
        with clock.pinned(NOW):
            stripe_world.standin.complete_checkout(session_id, "visa")
        await tab.open(f"/subscription?checkout_session={session_id}", SubscriptionState)
        st = await tab.state(SubscriptionState)
        assert st.current_plan == "Pro" and [p.status for p in st.payments] == ["paid"]
        assert (await tab.state(SessionState)).balance == 3050

    run(scenario)
    sub = live_sub(app_db, account_id)
    assert (sub.plan_key, sub.gateway) == ("pro", "stripe")


def test_stripe_mode_upgrade_cancel_and_resume_go_through_stripe(app_db, stripe_world):
    account_id, token = make_user(app_db, "stripe-up@example.com")
    with clock.pinned(NOW):
        stripe_world.checkout(account_id, "starter")
        stripe_world.deliver_pending()
    assert live_sub(app_db, account_id).gateway == "stripe"

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/plans", PlansState)
        await tab.send(PlansState, "open_action", plan_key="pro")
        f = facts(await tab.state(PlansState))
        assert (f["confirm-charge"], f["confirm-credits-added"], f["confirm-balance-after"]) == (
            "$20.00",
            "+2,200",
            "3,050",
        )
        sent = await tab.send(PlansState, "confirm")
        assert "You're on Pro" in sent
        assert (await tab.state(SessionState)).balance == 3050
        await tab.send(PlansState, "open_action", plan_key="pro")
        await tab.send(PlansState, "confirm")
        assert live_sub(app_db, account_id).cancel_at_period_end
        await tab.send(PlansState, "open_action", plan_key="pro")
        assert (await tab.state(PlansState)).dialog_kind == "resume"
        await tab.send(PlansState, "confirm")
        assert not live_sub(app_db, account_id).cancel_at_period_end

    run(scenario)
    upgrades = [i for i in invoices_of(app_db, account_id) if i.kind == "upgrade"]
    assert [(i.status, i.amount_cents) for i in upgrades] == [("paid", 2000)]
    assert live_sub(app_db, account_id).plan_key == "pro"


def test_payment_history_pages_through_every_payment_once(app_db):
    from workroom_app.billing import invoices as invoice_book
    from workroom_app.billing.invoices import LineItem
    from workroom_app.state.subscription import PAGE_SIZE

    account_id, token = make_user(app_db, "many@example.com")
    total = PAGE_SIZE * 2 + 5
    with clock.pinned(NOW), write_session(app_db) as s:
        for n in range(total):
            invoice_book.create_invoice(
                s,
                account_id,
                kind="renewal",
                status="failed",
                amount_cents=1000 + n,
                idempotency_key=f"many:{n}",
                lines=[LineItem("Starter plan", 1000 + n)],
                card_brand="visa",
                card_last4="0341",
                failure_reason="Your card was declined.",
            )

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", SubscriptionState)
        st = await tab.state(SubscriptionState)
        assert len(st.payments) == PAGE_SIZE and st.has_more and st.payments_total == total
        await tab.send(SubscriptionState, "more_payments")
        await tab.send(SubscriptionState, "more_payments")
        st = await tab.state(SubscriptionState)
        assert not st.has_more
        amounts = [p.amount for p in st.payments]
        assert amounts == [
            f"${(1000 + n) // 100}.{(1000 + n) % 100:02d}" for n in reversed(range(total))
        ]
        await tab.send(SubscriptionState, "more_payments")  # nothing left: no change
        assert len((await tab.state(SubscriptionState)).payments) == total

    run(scenario)


@BOTH_ENGINES
def test_two_tabs_confirming_the_same_upgrade_at_once_charge_once(app_db):
    account_id, token = make_user(app_db, "twotabs@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tabs = [new_browser(), new_browser()]
        for tab in tabs:
            await tab.sign_in(token)
            await tab.open("/plans", PlansState)
            await tab.send(PlansState, "open_action", plan_key="studio")
        await asyncio.gather(*(tab.send(PlansState, "confirm") for tab in tabs))
        for tab in tabs:
            await tab.send(SessionState, "refresh_balance")
            assert (await tab.state(SessionState)).balance == 50 + 9000

    run(scenario)
    upgrades = [i for i in invoices_of(app_db, account_id) if i.kind == "upgrade"]
    assert [(i.status, i.amount_cents) for i in upgrades] == [("paid", 7000)]
    assert balance(app_db, account_id) == 9050


def test_resubscribing_can_pay_with_the_saved_card(app_db):
    account_id, token = make_user(app_db, "again@example.com")
    subscribe(app_db, account_id, "starter")
    with clock.pinned(NOW), write_session(app_db) as s:
        subscriptions.end_subscription(s, subscriptions.live_subscription(s, account_id))

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/checkout?plan=pro", CheckoutState)
        st = await tab.state(CheckoutState)
        assert st.saved_card.startswith("Visa ending in 4242")
        sent = await tab.send(CheckoutState, "pay_with_saved_card")
        assert "/subscription" in sent

    run(scenario)
    assert live_sub(app_db, account_id).plan_key == "pro"
    assert [(i.kind, i.amount_cents) for i in invoices_of(app_db, account_id)] == [
        ("activation", 1000),
        ("activation", 3000),
    ]


@BOTH_ENGINES
def test_subscription_page_cancels_and_resumes_auto_renewal_with_confirmation(app_db):
    """The Subscription page's button sends the current plan's key to the Plans
    card's own handler: same checks, same confirmation, same billing functions;
    the page's overview follows."""
    account_id, token = make_user(app_db, "subpage@example.com")
    subscribe(app_db, account_id, "starter")
    with write_session(app_db) as s:  # dates in the account's zone
        s.get(accounts.Account, account_id).timezone = "Asia/Tokyo"

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/subscription", SubscriptionState)
        sub = await tab.state(SubscriptionState)
        assert sub.auto_renew and sub.current_plan_key == "starter"
        # Opening the dialog changes nothing yet.
        await tab.send(PlansState, "open_action", plan_key=sub.current_plan_key)
        st = await tab.state(PlansState)
        assert st.dialog_open and st.dialog_kind == "cancel"
        assert "Dec 25, 2026" in st.dialog_intro  # Dec 24 15:00 UTC is Dec 25 in Tokyo
        assert not live_sub(app_db, account_id).cancel_at_period_end
        await tab.send(PlansState, "confirm")
        assert live_sub(app_db, account_id).cancel_at_period_end
        sub = await tab.state(SubscriptionState)
        assert not sub.auto_renew and sub.period_end == "Dec 25, 2026"
        assert not (await tab.state(PlansState)).dialog_open
        # Resume, from the same button.
        await tab.send(PlansState, "open_action", plan_key=sub.current_plan_key)
        assert (await tab.state(PlansState)).dialog_kind == "resume"
        await tab.send(PlansState, "confirm")
        assert not live_sub(app_db, account_id).cancel_at_period_end
        assert (await tab.state(SubscriptionState)).auto_renew
        # A forged key for another plan is refused by the same checks: nothing changes.
        before = snapshot(app_db, account_id)
        out = await tab.send(PlansState, "open_action", plan_key="free")
        assert "toast" in out and not (await tab.state(PlansState)).dialog_open
        assert snapshot(app_db, account_id) == before

    run(scenario)
