"""The login cookie is set and cleared here, by the server, never by page script.

POST /api/auth/session   form `ticket`: trades the one-time ticket a successful log-in or sign-up
                         handed the page (state/auth.py) for the session; answers 303 to the app
                         with Set-Cookie (HttpOnly, SameSite=Lax, Secure on https). The full page
                         load that follows opens a new websocket, which carries the cookie.
POST /api/auth/logout    revokes the cookie's session and clears the cookie; 303 to /login.
GET  /api/auth/confirm   ?token=<signed link>: confirms the address, grants the trial once.

The two POSTs refuse requests from other sites (Origin / Sec-Fetch-Site), so a page elsewhere
can neither log a visitor into its own account nor log them out.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from workroom_app.billing import accounts
from workroom_app.billing.email_confirmation import CONFIRM_PATH
from workroom_app.db import write_session
from workroom_app.routes import LANDING_ROUTE, landing_route
from workroom_app.routes import LOGIN_ROUTE as LOGIN
from workroom_app.security import signing
from workroom_app.security.session_cookie import COOKIE_NAME, cookie_attributes

SESSION_PATH = "/api/auth/session"
LOGOUT_PATH = "/api/auth/logout"
_NO_STORE = {"Cache-Control": "no-store"}


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return site is not None or origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


def _redeem(ticket: str) -> tuple[str, str] | None:
    """(session token, where this account lands) for a good ticket, else None."""
    with write_session() as session:
        token = accounts.redeem_login_ticket(session, ticket)
        account = accounts.lookup_session(session, token) if token else None
        if token is None or account is None:
            return None
        return token, landing_route(accounts.is_staff(account))


def _revoke(token: str) -> None:
    with write_session() as session:
        accounts.revoke_login(session, token)


async def start_session(request: Request) -> Response:
    if not _same_origin(request):
        return JSONResponse(
            {"error": "Cross-site request refused."}, status_code=403, headers=_NO_STORE
        )
    body = await request.body()  # capped by security/body_limit.py
    ticket = (parse_qs(body.decode("utf-8", "replace")).get("ticket") or [""])[0]
    redeemed = await run_in_threadpool(_redeem, ticket) if ticket else None
    if redeemed is None:
        return RedirectResponse(LOGIN, status_code=303, headers=_NO_STORE)
    token, landing = redeemed
    response = RedirectResponse(landing, status_code=303, headers=_NO_STORE)
    response.set_cookie(COOKIE_NAME, token, **cookie_attributes())
    return response


async def end_session(request: Request) -> Response:
    if not _same_origin(request):
        return JSONResponse(
            {"error": "Cross-site request refused."}, status_code=403, headers=_NO_STORE
        )
    token = request.cookies.get(COOKIE_NAME, "")
    if token and len(token) <= 200:
        await run_in_threadpool(_revoke, token)
    response = RedirectResponse(LOGIN, status_code=303, headers=_NO_STORE)
    attrs = cookie_attributes()
    response.delete_cookie(
        COOKIE_NAME, path=attrs["path"], secure=attrs["secure"], httponly=True, samesite="lax"
    )
    return response


def _confirm(token: str) -> tuple[str, int]:
    found = signing.read_confirmation_token(token)
    if found is None:
        return "invalid", 0
    with write_session() as session:
        account, granted = accounts.confirm_email(session, found[0], found[1])
        if account is None:
            return "invalid", 0
        return ("granted" if granted else "confirmed"), accounts.trial_credits()


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{html.escape(title)} · Workroom</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}"
        "a{color:#4f46e5}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p><p><a href="{LANDING_ROUTE}">Continue to Workroom</a></p>'
        "</body></html>"
    )
    return HTMLResponse(
        body, status_code=status, headers={**_NO_STORE, "Referrer-Policy": "no-referrer"}
    )


async def confirm_email(request: Request) -> Response:
    token = request.query_params.get("token", "")
    outcome, credits = await run_in_threadpool(_confirm, token)
    if outcome == "granted":
        return _page(
            "Email address confirmed",
            f"Thank you. {credits} trial credits were added to your balance.",
        )
    if outcome == "confirmed":
        return _page(
            "Email address confirmed",
            "Your address is confirmed. Trial credits are given once per email address, and this "
            "address has already received them.",
        )
    return _page(
        "This link does not work",
        "The link is invalid or has expired. Log in and ask for a new confirmation link.",
        status=400,
    )


AUTH_ROUTES: list[Route] = [
    Route(SESSION_PATH, start_session, methods=["POST"]),
    Route(LOGOUT_PATH, end_session, methods=["POST"]),
    Route(CONFIRM_PATH, confirm_email, methods=["GET"]),
]
