"""The page for an address that is not a page: inside the shell, with a way
back. Registered in workroom_app.py as Reflex's 404 route (not through
app_page, which only takes real paths); the guard still sends signed-out
visitors to /login first."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import layout
from workroom_app.routes import LANDING_ROUTE


def not_found_page() -> rx.Component:
    return layout(
        rx.card(
            rx.vstack(
                rx.icon("map-pin-off", size=32, color=rx.color("gray", 9)),
                rx.heading("There is no page at this address", as_="h2", size="5"),
                rx.text("The link may be mistyped, or the page has moved.", color_scheme="gray"),
                rx.hstack(
                    rx.link(
                        rx.button(rx.icon("sparkles", size=16), "Go to Generate"),
                        href=LANDING_ROUTE,
                        data_testid="not-found-home",
                    ),
                    rx.button(
                        "Go back",
                        variant="soft",
                        color_scheme="gray",
                        on_click=rx.call_script("window.history.back()"),
                        data_testid="not-found-back",
                    ),
                    spacing="3",
                    wrap="wrap",
                ),
                align="center",
                spacing="3",
                padding="2rem",
                text_align="center",
            ),
            width="100%",
            data_testid="not-found",
        ),
        "Page not found",
    )
