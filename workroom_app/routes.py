"""Where people land: the routes both the pages (state/) and the HTTP routes
(http/) need, in a module that imports neither Reflex nor the database."""

from __future__ import annotations

LOGIN_ROUTE = "/login"
SIGNUP_ROUTE = "/signup"
# Where a signed-in visitor lands ("/" and the auth pages send them here).
LANDING_ROUTE = "/generate"
# Staff land on the business overview.
STAFF_LANDING_ROUTE = "/staff"
# Broken-result reports waiting for staff (pages/staff_reports.py).
STAFF_REPORTS_ROUTE = "/staff/reports"
# The rows behind an overview figure (pages/staff_figure_rows.py).
STAFF_ROWS_ROUTE = "/staff/rows"
PUBLIC_ROUTES = frozenset({LOGIN_ROUTE, SIGNUP_ROUTE})


def landing_route(is_staff: bool) -> str:
    return STAFF_LANDING_ROUTE if is_staff else LANDING_ROUTE
