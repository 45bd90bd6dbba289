"""Buy credits (/credits, the header's "Buy credits"): the catalog's credit
packs, on every plan, and their checkout (local test mode: the card form;
Stripe: its hosted Checkout)."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import app_page
from workroom_app.components.plan_card_form import card_form
from workroom_app.routes import CREDITS_ROUTE, USAGE_ROUTE
from workroom_app.state.credits import CreditsState, PackCard


def pack_rules() -> rx.Component:
    # The same words as README "Decisions".
    return rx.text(
        "Credit packs are one-off purchases, available on every plan, Free included. Pack credits expire ",
        CreditsState.expiry_months,
        " months after purchase and are spent after plan credits. Downgrading or the end of a plan "
        "never burns credits from packs.",
        color_scheme="gray",
        data_testid="pack-rules",
    )


def pack_card(pack: PackCard) -> rx.Component:
    chosen = CreditsState.chosen_key == pack.key
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon("coins", size=20, color=rx.color("amber", 10)),
                rx.text(pack.credits_text, " credits", size="5", weight="bold"),
                align="center",
                spacing="2",
            ),
            rx.text(pack.price_text, size="6", weight="bold"),
            rx.text("One-off purchase", size="1", color_scheme="gray"),
            rx.button(
                rx.cond(chosen, "Selected", "Buy " + pack.label),
                on_click=CreditsState.choose(pack.key),
                disabled=CreditsState.busy,
                variant=rx.cond(chosen, "soft", "solid"),
                width="100%",
                data_testid="buy-pack-" + pack.key,
            ),
            spacing="2",
            width="100%",
        ),
        size="3",
        width="100%",
        data_testid="pack-" + pack.key,
    )


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
            rx.text("You're buying", size="2", color_scheme="gray"),
            rx.heading(
                "Credit pack: ",
                CreditsState.chosen_label,
                size="6",
                as_="h2",
                data_testid="pack-summary-label",
            ),
            rx.separator(size="4"),
            _summary_row("Charged now", CreditsState.charge_text, "pack-charge"),
            _summary_row(
                "Credits added now", "+" + CreditsState.credits_added_text, "pack-credits"
            ),
            _summary_row("Credits expire on", CreditsState.expires_text, "pack-expires"),
            rx.text(
                "Pack credits are spent after plan credits. Downgrading or the end of a plan never burns them.",
                size="1",
                color_scheme="gray",
            ),
            rx.button(
                "Choose another pack",
                on_click=CreditsState.cancel_choice,
                variant="ghost",
                size="1",
            ),
            spacing="3",
            width="100%",
        ),
        size="3",
        width="100%",
    )


def payment_form() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Payment", size="4", as_="h3"),
                rx.badge("Test mode", color_scheme="amber", high_contrast=True),
                justify="between",
                width="100%",
            ),
            rx.text(
                "Test cards: 4242 4242 4242 4242 (Visa), 3782 822463 10005 (Amex); "
                "4000 0000 0000 0002 is declined. Any future expiry date.",
                size="1",
                color_scheme="gray",
            ),
            rx.cond(
                CreditsState.saved_card != "",
                rx.card(
                    rx.vstack(
                        rx.text("Card on file: ", CreditsState.saved_card, size="2"),
                        rx.button(
                            "Pay " + CreditsState.charge_text + " with this card",
                            on_click=CreditsState.pay_with_saved_card,
                            loading=CreditsState.busy,
                            variant="soft",
                            width="100%",
                            data_testid="pack-pay-saved-card",
                        ),
                        rx.text("or pay with a new card:", size="2", color_scheme="gray"),
                        spacing="2",
                        width="100%",
                    ),
                    width="100%",
                ),
            ),
            card_form(
                on_submit=CreditsState.submit,
                busy=CreditsState.busy,
                submit_label="Pay " + CreditsState.charge_text,
                number_error=CreditsState.number_error,
                expiry_error=CreditsState.expiry_error,
                cvc_error=CreditsState.cvc_error,
                name_error=CreditsState.name_error,
                form_error=CreditsState.form_error,
                testid="pack-card-form",
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


@app_page(CREDITS_ROUTE, "Buy credits", on_load=CreditsState.load)
def credits_page() -> rx.Component:
    return rx.vstack(
        rx.vstack(
            rx.heading("Buy credits", size="7", as_="h2", weight="bold"),
            pack_rules(),
            spacing="2",
        ),
        rx.cond(
            CreditsState.page_error != "",
            rx.callout(
                CreditsState.page_error,
                icon="circle-alert",
                color_scheme="red",
                width="100%",
                data_testid="credits-page-error",
                role="alert",
            ),
        ),
        rx.cond(
            CreditsState.done_message != "",
            rx.callout(
                rx.text(
                    CreditsState.done_message,
                    " ",
                    rx.link("See it on Usage", href=USAGE_ROUTE, data_testid="pack-usage-link"),
                ),
                icon="circle-check",
                color_scheme="green",
                width="100%",
                data_testid="pack-done",
                role="status",
            ),
        ),
        rx.cond(
            CreditsState.loading & (CreditsState.packs.length() == 0),
            rx.center(rx.spinner(size="3"), width="100%", padding="3rem"),
            rx.grid(
                rx.foreach(CreditsState.packs, pack_card),
                columns=rx.breakpoints(initial="1", sm="3"),
                spacing="4",
                width="100%",
            ),
        ),
        rx.cond(
            CreditsState.chosen_key != "",
            rx.grid(
                summary(),
                payment_form(),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="4",
                width="100%",
                align_items="start",
                data_testid="pack-checkout",
            ),
        ),
        spacing="5",
        width="100%",
        max_width="60rem",
    )
