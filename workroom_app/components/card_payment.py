"""The payment panel of the two local-checkout pages (a plan on /checkout, a credit pack on
/credits): test-mode note, "Pay with the card on file", the card form. Its state is a
subclass of state/card_payment.CardPaymentMixin (the vars and events used here)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from workroom_app.components.plan_card_form import card_form


def summary_row(label: str, value: Any, testid: str) -> rx.Component:
    """One "label ... value" line of a checkout summary."""
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.text(value, size="3", weight="bold", data_testid=testid),
        justify="between",
        width="100%",
    )


def _saved_card_option(state: Any, label: Any, testid: str) -> rx.Component:
    return rx.cond(
        state.saved_card != "",
        rx.card(
            rx.vstack(
                rx.text("Card on file: ", state.saved_card, size="2"),
                rx.button(
                    label,
                    on_click=state.pay_with_saved_card,
                    loading=state.busy,
                    variant="soft",
                    width="100%",
                    data_testid=testid,
                ),
                rx.text("or pay with a new card:", size="2", color_scheme="gray"),
                spacing="2",
                width="100%",
            ),
            width="100%",
        ),
    )


def payment_panel(
    state: Any,
    *,
    submit_label: Any,
    saved_card_label: Any,
    saved_card_testid: str,
    form_testid: str,
    heading_level: str = "h2",
    badge_high_contrast: bool = False,
) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Payment", as_=heading_level, size="4"),
                rx.badge("Test mode", color_scheme="amber", high_contrast=badge_high_contrast),
                justify="between",
                width="100%",
            ),
            rx.text(
                "Test cards: 4242 4242 4242 4242 (Visa), 3782 822463 10005 (Amex); "
                "4000 0000 0000 0002 is declined. Any future expiry date.",
                size="1",
                color_scheme="gray",
            ),
            _saved_card_option(state, saved_card_label, saved_card_testid),
            card_form(
                on_submit=state.submit,
                busy=state.busy,
                submit_label=submit_label,
                number_error=state.number_error,
                expiry_error=state.expiry_error,
                cvc_error=state.cvc_error,
                name_error=state.name_error,
                form_error=state.form_error,
                testid=form_testid,
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
