"""Checkout (/checkout?plan=KEY), local test mode: the card form and exactly
what the payment does. With Stripe configured, this page hands over to
Stripe's hosted Checkout instead."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.card_payment import payment_panel, summary_row
from workroom_app.components.layout import app_page
from workroom_app.routes import CHECKOUT_ROUTE, PLANS_ROUTE
from workroom_app.state.checkout import CheckoutState


def summary() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("You're subscribing to", size="2", color_scheme="gray"),
            rx.heading(CheckoutState.plan_name, as_="h2", size="6", data_testid="checkout-plan"),
            rx.separator(size="4"),
            summary_row("Charged now", CheckoutState.charge_text, "checkout-charge"),
            summary_row(
                "Credits added now", "+" + CheckoutState.credits_added_text, "checkout-credits"
            ),
            summary_row("Renews on", CheckoutState.renewal_text, "checkout-renewal"),
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


def payment_form() -> rx.Component:
    return payment_panel(
        CheckoutState,
        submit_label="Pay " + CheckoutState.charge_text + " and subscribe",
        saved_card_label="Pay with this card",
        saved_card_testid="pay-saved-card",
        form_testid="checkout-form",
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
