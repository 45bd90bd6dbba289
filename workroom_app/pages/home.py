"""The signed-in landing page: balance and plan at a glance."""

import reflex as rx

from workroom_app.components.layout import NavItem, app_page
from workroom_app.routes import HOME_ROUTE, PLANS_ROUTE
from workroom_app.state.session import SessionState


def stat_card(label: str, value: rx.Component, note: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray", weight="medium"),
            value,
            note,
            spacing="2",
        ),
        size="3",
        width="100%",
    )


@app_page(HOME_ROUTE, "Home", nav=NavItem("Home", "house", order=0))
def home_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Hello, ", SessionState.display_name, as_="h2", size="7", weight="bold"),
        rx.text(
            "Credits pay for everything you generate: images, videos, voiceovers, "
            "face swap and lip sync.",
            color_scheme="gray",
        ),
        rx.grid(
            stat_card(
                "Credit balance",
                rx.text(
                    SessionState.balance_text, size="8", weight="bold", data_testid="home-balance"
                ),
                rx.text("credits available", size="2", color_scheme="gray"),
            ),
            stat_card(
                "Current plan",
                rx.text(SessionState.plan_name, size="8", weight="bold", data_testid="home-plan"),
                rx.link("Compare plans", href=PLANS_ROUTE, size="2"),
            ),
            columns=rx.breakpoints(initial="1", sm="2"),
            spacing="4",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )
