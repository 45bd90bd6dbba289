"""`/`: the guard sends a signed-in visitor to the landing page, others to /login."""

import reflex as rx

from workroom_app.components.layout import app_page
from workroom_app.routes import INDEX_ROUTE


@app_page(INDEX_ROUTE, "Workroom", public=True)
def index_page() -> rx.Component:
    return rx.center(rx.spinner(size="3"), height="100vh")
