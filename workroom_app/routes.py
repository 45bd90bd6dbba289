"""Every page's route, in one place: the pages register under these, and the states, components,
HTTP routes and billing messages link to them. It imports neither Reflex nor the database, so
any layer may use it. (API paths stay beside their handlers in http/.)"""

from __future__ import annotations

INDEX_ROUTE = "/"
LOGIN_ROUTE = "/login"
SIGNUP_ROUTE = "/signup"
HOME_ROUTE = "/home"
GENERATE_ROUTE = "/generate"
USAGE_ROUTE = "/usage"
PLANS_ROUTE = "/plans"
CHECKOUT_ROUTE = "/checkout"
SUBSCRIPTION_ROUTE = "/subscription"
CREDITS_ROUTE = "/credits"  # Buy credits: one-off credit packs
STAFF_OVERVIEW_ROUTE = "/staff"
STAFF_ACCOUNTS_ROUTE = "/staff/accounts"
STAFF_QUEUES_ROUTE = "/staff/queues"
STAFF_REPORTS_ROUTE = "/staff/reports"  # broken-result reports waiting for staff
STAFF_ROWS_ROUTE = "/staff/rows"  # the rows behind an overview figure

# Sections of the Subscription page that other pages link to.
SUBSCRIPTION_ALERTS_ANCHOR = SUBSCRIPTION_ROUTE + "#alerts"
SUBSCRIPTION_CARD_ANCHOR = SUBSCRIPTION_ROUTE + "#card"

# Where a signed-in visitor lands ("/" and the auth pages send them here).
LANDING_ROUTE = GENERATE_ROUTE
# Staff land on the business overview.
STAFF_LANDING_ROUTE = STAFF_OVERVIEW_ROUTE
PUBLIC_ROUTES = frozenset({LOGIN_ROUTE, SIGNUP_ROUTE})


def landing_route(is_staff: bool) -> str:
    return STAFF_LANDING_ROUTE if is_staff else LANDING_ROUTE
