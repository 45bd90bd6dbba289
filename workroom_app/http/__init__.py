"""Plain Starlette HTTP routes served next to the Reflex app (via api_transformer).

workroom_app.py mounts them: `API_ROUTES = [..., *STRIPE_ROUTES]`.
"""

from workroom_app.http.stripe_routes import STRIPE_ROUTES, stripe_routes

__all__ = ["STRIPE_ROUTES", "stripe_routes"]
