"""The login cookie: written and cleared only by the server (http/auth_routes.py), never by script.

HttpOnly (page script, and so an injected script, cannot read it), SameSite=Lax (not sent on
cross-site POSTs or sub-requests, still sent when a link from elsewhere is followed), Secure
when the public URL is https, Path=/ so the websocket and every /api route receive it.
The websocket reads it from the upgrade request's Cookie header (router.headers), HTTP routes
from the request: Reflex's client token (a tab id the browser picks) never identifies anyone.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any

from workroom_app.settings import get_settings

COOKIE_NAME = "workroom_session"
_MAX_TOKEN = 200


def token_from_cookie_header(header: Any) -> str:
    """The session token in a raw Cookie header, or "" (absent, malformed, oversized)."""
    if not isinstance(header, str) or COOKIE_NAME not in header or len(header) > 16_384:
        return ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        # One malformed cookie of another site makes SimpleCookie give up: fall back to a split.
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE_NAME:
                return value if 0 < len(value) <= _MAX_TOKEN else ""
        return ""
    morsel = jar.get(COOKIE_NAME)
    value = morsel.value if morsel is not None else ""
    return value if 0 < len(value) <= _MAX_TOKEN else ""


def cookie_attributes() -> dict[str, Any]:
    """The keyword arguments of starlette's Response.set_cookie for the login cookie."""
    settings = get_settings()
    return {
        "max_age": settings.session_days * 86400,
        "path": "/",
        "httponly": True,
        "samesite": "lax",
        "secure": settings.public_url.lower().startswith("https://"),
    }
