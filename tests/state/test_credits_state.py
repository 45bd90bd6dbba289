"""The Buy credits page state through Reflex's real event path: a browser can
call any handler with anything, so forged pack ids, prices and payloads must
get a clear message and change nothing; a double click charges once."""

from __future__ import annotations

import pytest

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
from workroom_app.billing import clock
from workroom_app.state.credits import CreditsState
from workroom_app.state.session import SessionState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(PlansTab, now=NOW)


@BOTH_ENGINES
def test_buying_a_pack_on_free_adds_credits_and_shows_the_balance(app_db):
    account_id, token = make_user(app_db, "pack@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/credits", CreditsState)
        st = await tab.state(CreditsState)
        assert [(p.key, p.credits_text, p.price_text) for p in st.packs] == [
            ("credits_500", "500", "$6.00"),
            ("credits_2000", "2,000", "$20.00"),
            ("credits_6000", "6,000", "$50.00"),
        ]
        await tab.send(CreditsState, "choose", pack_key="credits_2000")
        st = await tab.state(CreditsState)
        assert (st.chosen_key, st.charge_text, st.credits_added_text, st.expires_text) == (
            "credits_2000",
            "$20.00",
            "2,000",
            "Nov 24, 2027",
        )
        sent = await tab.send(CreditsState, "submit", form_data=dict(VISA))
        assert "2,000 credits were added" in sent
        assert (await tab.state(SessionState)).balance == 2050
        st = await tab.state(CreditsState)
        assert st.chosen_key == "" and st.done_message

    run(scenario)
    [inv] = invoices_of(app_db, account_id)
    assert (inv.kind, inv.status, inv.amount_cents) == ("pack", "paid", 2000)


@BOTH_ENGINES
def test_a_double_click_on_pay_charges_once(app_db):
    account_id, token = make_user(app_db, "dbl@example.com")
    subscribe(app_db, account_id, "starter")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/credits", CreditsState)
        await tab.send(CreditsState, "choose", pack_key="credits_500")
        event = tab.event(CreditsState, "pay_with_saved_card", {})
        futures = [await tab.processor.enqueue(tab.token, event) for _ in range(3)]
        for future in futures:
            await future.wait_all()

    run(scenario)
    assert [i.kind for i in invoices_of(app_db, account_id)] == ["activation", "pack"]
    assert balance(app_db, account_id) == 50 + 800 + 500


@pytest.mark.parametrize(
    "forged",
    ["credits_501", "", None, 500, -1, 0.5, ["credits_500"], {"key": "credits_500"}, "x" * 5000],
)
def test_forged_pack_ids_get_a_clear_message_and_change_nothing(app_db, forged):
    account_id, token = make_user(app_db, "forge@example.com")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/credits", CreditsState)
        await tab.send(CreditsState, "choose", pack_key=forged)
        st = await tab.state(CreditsState)
        assert st.chosen_key == "" and "does not exist" in st.page_error
        # Paying anyway has nothing to pay for.
        await tab.send(CreditsState, "submit", form_data=dict(VISA))
        await tab.send(CreditsState, "pay_with_saved_card")

    run(scenario)
    assert snapshot(app_db, account_id) == before


def test_no_price_or_credits_are_taken_from_the_browser(app_db):
    account_id, token = make_user(app_db, "price@example.com")
    before = snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/credits", CreditsState)
        await tab.send(CreditsState, "choose", pack_key="credits_500")
        # Extra arguments and forged form fields are not prices.
        await tab.send(
            CreditsState,
            "submit",
            form_data={**VISA, "price_cents": 1, "credits": 6000, "number": "x"},
        )
        # An unknown argument: Reflex refuses the event before the handler runs.
        await tab.send(CreditsState, "pay_with_saved_card", amount=1, refused=TypeError)
        for payload in ("4242", ["x"], None, 12):
            await tab.send(CreditsState, "submit", form_data=payload)

    run(scenario)
    assert snapshot(app_db, account_id) == before


def test_a_declined_card_shows_the_reason(app_db):
    account_id, token = make_user(app_db, "decl@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/credits", CreditsState)
        await tab.send(CreditsState, "choose", pack_key="credits_500")
        await tab.send(CreditsState, "submit", form_data={**VISA, "number": "4000000000009995"})
        st = await tab.state(CreditsState)
        assert (
            st.form_error == "Your card has insufficient funds." and st.chosen_key == "credits_500"
        )
        assert (await tab.state(SessionState)).balance == 50

    run(scenario)
    assert [(i.kind, i.status) for i in invoices_of(app_db, account_id)] == [("pack", "failed")]


def test_signed_out_browsers_get_nothing(app_db):
    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(SessionState, "refresh_balance")
        await tab.open("/credits", CreditsState)
        await tab.send(CreditsState, "choose", pack_key="credits_500")
        st = await tab.state(CreditsState)
        assert st.chosen_key == "" and st.packs == []

    run(scenario)


def test_stripe_mode_goes_to_checkout_and_credits_on_return(app_db, stripe_world):
    account_id, token = make_user(app_db, "stripe-pack@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.open("/credits", CreditsState)
        sent = await tab.send(CreditsState, "choose", pack_key="credits_6000")
        session_id = next(iter(stripe_world.standin.sessions))
        assert f"https://checkout.stripe.com/c/pay/{session_id}" in sent
        with clock.pinned(NOW):
            stripe_world.standin.complete_payment_checkout(session_id, "visa")
        await tab.open(f"/credits?checkout_session={session_id}", CreditsState)
        assert (await tab.state(SessionState)).balance == 6050
        assert "added" in (await tab.state(CreditsState)).done_message

    run(scenario)
    with clock.pinned(NOW):
        stripe_world.deliver_pending()
    assert balance(app_db, account_id) == 6050
    assert [(i.kind, i.gateway) for i in invoices_of(app_db, account_id)] == [("pack", "stripe")]
