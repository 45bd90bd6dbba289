"""The Reflex app: theme, pages, HTTP routes.

How to add a page (its route in routes.py, one function, one import line):

    # workroom_app/routes.py
    USAGE_ROUTE = "/usage"

    # workroom_app/pages/usage.py
    import reflex as rx
    from workroom_app.components.layout import NavItem, app_page
    from workroom_app.routes import USAGE_ROUTE
    from workroom_app.state.usage import UsageState        # class UsageState(SessionState)

    @app_page(USAGE_ROUTE, "Usage", nav=NavItem("Usage", "history", order=20),
              on_load=UsageState.load)
    def usage_page() -> rx.Component:
        return rx.vstack(...)                               # the content only

    # then in workroom_app/pages/__init__.py add `usage` to the import list.

`app_page` wraps the content in the shell (sidebar, header with balance and
Upgrade), runs the login guard before `on_load` in one event (signed-out visitors go to
/login; state/page_open.py), and adds the sidebar entry when `nav=` is given (NavItem(...,
staff_only=True) shows it to staff only). Sidebar order: NavItem.order
(Home 0, Generate 10, Usage 20, Plans 30, Subscription 40, Staff 90).
`public=True` is only for pages signed-out visitors may see (no shell).

How to add an HTTP route: append a starlette Route to API_ROUTES below; it is
served on the same port as the app (reflex is mounted under it).
"""

from __future__ import annotations

import asyncio
import importlib.util

import reflex as rx
from reflex_base.registry import RegistrationContext
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workroom_app import (
    background,
    db,
    pages,  # noqa: F401  (registers every page)
)
from workroom_app.background import register_background
from workroom_app.billing import catalog
from workroom_app.components.layout import PAGES
from workroom_app.db import read_session
from workroom_app.generation.worker import HEARTBEAT_SECONDS, live_worker_count
from workroom_app.http.auth_routes import AUTH_ROUTES
from workroom_app.http.invoice_routes import INVOICE_ROUTES
from workroom_app.http.media_routes import MEDIA_ROUTES
from workroom_app.http.payment_routes import PAYMENT_ROUTES
from workroom_app.http.stripe_routes import STRIPE_ROUTES
from workroom_app.http.unsubscribe_routes import UNSUBSCRIBE_ROUTES
from workroom_app.http.usage_csv import USAGE_CSV_ROUTES
from workroom_app.pages.not_found import not_found_page
from workroom_app.security import event_failures, log_redaction
from workroom_app.security.body_limit import cap_request_bodies
from workroom_app.state import page_open
from workroom_app.state.session_guard import SessionGuard

# Before anything can log: no cookie, token, password or card number reaches the log.
log_redaction.install()


def _check_catalog() -> None:
    """A broken catalog stops start-up with the bad field named (CatalogError)."""
    if importlib.util.find_spec("workroom_app.billing.catalog") is None:
        return

    catalog.get_catalog()


async def health(_request: Request) -> JSONResponse:
    def ping() -> None:
        # Through the module, so the health test can swap in a broken engine.
        with db.get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await asyncio.to_thread(ping)
    except Exception as exc:  # noqa: BLE001  (report any database failure as unhealthy)
        return JSONResponse(
            {"status": "error", "detail": f"database: {exc.__class__.__name__}"}, status_code=503
        )
    problem = await asyncio.to_thread(_worker_problem)
    if problem:
        # The pages work; generations wait. 200 so a load balancer keeps serving the pages.
        return JSONResponse({"status": "degraded", "detail": problem})
    return JSONResponse({"status": "ok"})


def _worker_problem() -> str | None:
    """Why generations would not run now, or None: the in-process worker is restarting after a
    crash, or (workers run as their own processes) none has reported recently."""
    if background.worker_enabled():
        status = background.worker_status
        if status["state"] == "restarting":
            return f"generation worker restarting after: {status['error']}"
        return None

    with read_session() as session:
        if live_worker_count(session) == 0:
            return f"no generation worker has reported in {3 * HEARTBEAT_SECONDS:.0f} s"
    return None


API_ROUTES: list[Route] = [
    Route("/api/health", health, methods=["GET"]),
    *USAGE_CSV_ROUTES,
    *INVOICE_ROUTES,
    *MEDIA_ROUTES,
    *STRIPE_ROUTES,
    *AUTH_ROUTES,
    *PAYMENT_ROUTES,
    *UNSUBSCRIBE_ROUTES,
]


def upload_handler_names() -> list[str]:
    """The event handlers the upload endpoint may run (they take a list of rx.UploadFile)."""
    names = []
    for name, registered in RegistrationContext.get().event_handlers.items():
        hints = getattr(registered.handler.fn, "__annotations__", {})
        if any("UploadFile" in str(hint) for hint in hints.values()):
            names.append(name)
    return names


_check_catalog()

app = rx.App(
    # Outermost: the body cap sees every HTTP request before any route reads it.
    api_transformer=[
        Starlette(routes=API_ROUTES),
        lambda asgi: cap_request_bodies(asgi, upload_handler_names),
    ],
    toaster=rx.toast.provider(position="top-center", rich_colors=True),
    stylesheets=["/a11y.css"],  # focus ring, skip link, visually hidden text
    backend_exception_handler=event_failures.backend_exception_handler,
)
# Every event's session and text-input check (state/session_guard.py).
app.add_middleware(SessionGuard())

# No on_load is registered with Reflex: the guard and each page's loaders run inside Reflex's
# own page-load event, one event per page load (state/page_open.py).
for _spec in PAGES:
    app.add_page(_spec.render, route=_spec.route, title=f"{_spec.title} · Workroom")
    page_open.register(_spec.route, _spec.on_load)

# Any unknown address: the "Page not found" page, inside the shell
# (signed-out visitors are sent to /login by the guard, like everywhere else).
app.add_page(not_found_page, route=page_open.NOT_FOUND_ROUTE, title="Page not found · Workroom")
page_open.register(page_open.NOT_FOUND_ROUTE, [])

register_background(app)  # the generation worker + local renderer run with the backend
