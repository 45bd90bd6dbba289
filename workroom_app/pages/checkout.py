"""Checkout (/checkout?plan=KEY), local test mode: the card form and exactly
what the payment does. With Stripe configured, this page hands over to
Stripe's hosted Checkout instead."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import app_page
from workroom_app.components.plan_card_form import card_form
from workroom_app.routes import CHECKOUT_ROUTE, PLANS_ROUTE
from workroom_app.state.checkout import CheckoutState


def _summary_row(label: str, value, testid: str) -> rx.Component:  # noqa: ANN001
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.text(value, size="3", weight="bold", data_testid=testid),
        justify="between",
        width="100%",
    )


def summary() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("You're subscribing to", size="2", color_scheme="gray"),
            rx.heading(CheckoutState.plan_name, as_="h2", size="6", data_testid="checkout-plan"),
            rx.separator(size="4"),
            _summary_row("Charged now", CheckoutState.charge_text, "checkout-charge"),
            _summary_row(
                "Credits added now", "+" + CheckoutState.credits_added_text, "checkout-credits"
            ),
            _summary_row("Renews on", CheckoutState.renewal_text, "checkout-renewal"),
            rx.text(
                "The plan activates the moment the payment succeeds. Cancel auto-renewal at any time.",
                size="1",
                color_scheme="gray",
            ),
            spacing="3",
            width="100%",
        ),
        size="3",
        width="100%",
    )


def saved_card_option() -> rx.Component:
    return rx.cond(
        CheckoutState.saved_card != "",
        rx.card(
            rx.vstack(
                rx.text("Card on file: ", CheckoutState.saved_card, size="2"),
                rx.button(
                    "Pay with this card",
                    on_click=CheckoutState.pay_with_saved_card,
                    loading=CheckoutState.busy,
                    variant="soft",
                    width="100%",
                    data_testid="pay-saved-card",
                ),
                rx.text("or pay with a new card:", size="2", color_scheme="gray"),
                spacing="2",
                width="100%",
            ),
            width="100%",
        ),
    )


def payment_form() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Payment", as_="h2", size="4"),
                rx.badge("Test mode", color_scheme="amber"),
                justify="between",
                width="100%",
            ),
            rx.text(
                "Test cards: 4242 4242 4242 4242 (Visa), 3782 822463 10005 (Amex); "
                "4000 0000 0000 0002 is declined. Any future expiry date.",
                size="1",
                color_scheme="gray",
            ),
            saved_card_option(),
            card_form(
                on_submit=CheckoutState.submit,
                busy=CheckoutState.busy,
                submit_label="Pay " + CheckoutState.charge_text + " and subscribe",
                number_error=CheckoutState.number_error,
                expiry_error=CheckoutState.expiry_error,
                cvc_error=CheckoutState.cvc_error,
                name_error=CheckoutState.name_error,
                form_error=CheckoutState.form_error,
                testid="checkout-form",
            ),
            rx.text(
                "We keep only the card brand, last 4 digits and expiry, never the number or CVC.",
                size="1",
                color_scheme="gray",
            ),
            spacing="3",
            width="100%",
        ),
        size="3",
        width="100%",
    )


@app_page(CHECKOUT_ROUTE, "Checkout", on_load=CheckoutState.load)
def checkout_page() -> rx.Component:
    return rx.vstack(
        rx.link(
            rx.hstack(rx.icon("arrow-left", size=16), rx.text("All plans")),
            href=PLANS_ROUTE,
            size="2",
        ),
        rx.cond(
            CheckoutState.page_error != "",
            rx.callout(
                CheckoutState.page_error,
                icon="circle-alert",
                color_scheme="red",
                width="100%",
                data_testid="checkout-page-error",
            ),
            rx.cond(
                CheckoutState.ready,
                rx.grid(
                    summary(),
                    payment_form(),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="4",
                    width="100%",
                    align_items="start",
                ),
                rx.center(rx.spinner(size="3"), width="100%", padding="3rem"),
            ),
        ),
        spacing="4",
        width="100%",
        max_width="60rem",
    )
