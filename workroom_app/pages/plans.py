"""Plans (/plans, where the header's Upgrade leads): every catalog plan, the
current one marked, one button each, and a confirmation for every action."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import NavItem, app_page
from workroom_app.components.plan_cards import confirm_dialog, plan_grid
from workroom_app.routes import CREDITS_ROUTE, PLANS_ROUTE, SUBSCRIPTION_ROUTE
from workroom_app.state.plans import PlansState


@app_page(PLANS_ROUTE, "Plans", nav=NavItem("Plans", "gem", order=30), on_load=PlansState.load)
def plans_page() -> rx.Component:
    return rx.vstack(
        rx.vstack(
            rx.heading("Choose your plan", as_="h2", size="7", weight="bold"),
            rx.text(
                "Monthly credits, plan features and unlimited tools. Upgrades cost only the price "
                "difference; every change shows exactly what happens before you confirm.",
                color_scheme="gray",
            ),
            spacing="2",
        ),
        rx.cond(
            PlansState.load_error != "",
            rx.callout(
                PlansState.load_error, icon="circle-alert", color_scheme="red", width="100%"
            ),
        ),
        rx.cond(
            PlansState.loading & (PlansState.cards.length() == 0),
            rx.center(rx.spinner(size="3"), width="100%", padding="3rem"),
            plan_grid(),
        ),
        rx.card(
            rx.hstack(
                rx.vstack(
                    rx.heading("Need credits before your next renewal?", size="4", as_="h3"),
                    rx.text(
                        "Credit packs are one-off purchases, available on every plan, Free included. "
                        "Pack credits expire 12 months after purchase and are spent after plan credits.",
                        size="2",
                        color_scheme="gray",
                    ),
                    spacing="1",
                ),
                rx.button(
                    rx.icon("coins", size=16),
                    "Buy credits",
                    on_click=rx.redirect(CREDITS_ROUTE),
                    data_testid="plans-buy-credits",
                ),
                justify="between",
                align="center",
                width="100%",
                wrap="wrap",
                spacing="3",
            ),
            width="100%",
            data_testid="plans-packs",
        ),
        rx.link("See your payments and card on file →", href=SUBSCRIPTION_ROUTE, size="2"),
        confirm_dialog(),
        spacing="5",
        width="100%",
    )
