"""/generate: pick what to generate, see its cost on the button, follow it to the result."""

import reflex as rx

from workroom_app.components.generate_form import generate_form
from workroom_app.components.generate_jobs import active_jobs_panel, history_panel, results_panel
from workroom_app.components.layout import NavItem, app_page
from workroom_app.routes import GENERATE_ROUTE
from workroom_app.state.generate import GenerateState
from workroom_app.state.live import LiveState


@app_page(
    GENERATE_ROUTE,
    "Generate",
    nav=NavItem("Generate", "sparkles", order=10),
    on_load=[GenerateState.load, LiveState.start],
)
def generate_page() -> rx.Component:
    return rx.vstack(
        generate_form(),
        active_jobs_panel(),
        results_panel(),
        history_panel(),
        spacing="4",
        width="100%",
    )
