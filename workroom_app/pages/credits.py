"""Buy credits (/credits, the header's "Buy credits"): the catalog's credit
packs, on every plan, and their checkout (local test mode: the card form;
Stripe: its hosted Checkout)."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.card_payment import payment_panel, summary_row
from workroom_app.components.layout import app_page
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
            summary_row("Charged now", CreditsState.charge_text, "pack-charge"),
            summary_row("Credits added now", "+" + CreditsState.credits_added_text, "pack-credits"),
            summary_row("Credits expire on", CreditsState.expires_text, "pack-expires"),
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
    return payment_panel(
        CreditsState,
        submit_label="Pay " + CreditsState.charge_text,
        saved_card_label="Pay " + CreditsState.charge_text + " with this card",
        saved_card_testid="pack-pay-saved-card",
        form_testid="pack-card-form",
        heading_level="h3",
        badge_high_contrast=True,
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
