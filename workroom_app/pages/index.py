"""`/`: the guard sends a signed-in visitor to the landing page, others to /login."""

import reflex as rx

from workroom_app.components.layout import app_page


@app_page("/", "Workroom", public=True)
def index_page() -> rx.Component:
    return rx.center(rx.spinner(size="3"), height="100vh")
