"""One-click unsubscribe from an alert email (billing/unsubscribe.py), without logging in.

GET  /api/alerts/unsubscribe/<kind>?token=...   a page with one Unsubscribe button (a GET
                                                changes nothing: mail scanners open links)
POST /api/alerts/unsubscribe/<kind>?token=...   turns that email off; what a mail client
                                                sends for List-Unsubscribe-Post (RFC 8058)

The signed token is the credential, so the POST is accepted from any origin (mail
providers post it from their servers). A bad link gets a page saying why, status 400,
and changes nothing. The token travels in the query string as `token`, which the log
redaction (security/log_redaction.py) blanks.
"""

from __future__ import annotations

import html

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from workroom_app.billing import unsubscribe
from workroom_app.billing.unsubscribe import UNSUBSCRIBE_PATH, Answer
from workroom_app.db import write_session
from workroom_app.http.plain_page import plain_page
from workroom_app.security import signing

_STYLE = (
    "button{font:inherit;padding:.6rem 1rem;border-radius:8px;background:#3e63dd;color:#fff;"
    "border:0;cursor:pointer}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return plain_page(title, body, style=_STYLE, status=status)


def _refused(answer: Answer) -> HTMLResponse:
    return _page(
        "Unsubscribe link not valid",
        f'<p data-testid="unsubscribe-result">{html.escape(answer.message)}</p>',
        400,
    )


async def show(request: Request) -> Response:
    kind = request.path_params["kind"]
    checked = unsubscribe.check(kind, request.query_params.get("token"))
    if isinstance(checked, Answer):
        return _refused(checked)
    name = unsubscribe.KIND_NAMES[kind]
    return _page(
        f"Stop {name} emails?",
        f"<p>Workroom will stop emailing you about {html.escape(name)}. The alert still shows "
        "in the app.</p>"
        '<form method="post"><button type="submit" data-testid="unsubscribe-button">'
        "Unsubscribe</button></form>",
    )


def _apply(kind: str, token: str | None) -> Answer:
    signing.ensure_secret()  # before the transaction: on first use it writes the secret itself
    with write_session() as session:
        return unsubscribe.apply(session, kind, token)


async def apply(request: Request) -> Response:
    await request.body()  # "List-Unsubscribe=One-Click" or an empty form; capped by body_limit
    answer = await run_in_threadpool(
        _apply, request.path_params["kind"], request.query_params.get("token")
    )
    if not answer.ok:
        return _refused(answer)
    return _page(
        "Unsubscribed", f'<p data-testid="unsubscribe-result">{html.escape(answer.message)}</p>'
    )


UNSUBSCRIBE_ROUTES = [
    Route(f"{UNSUBSCRIBE_PATH}/{{kind}}", show, methods=["GET"]),
    Route(f"{UNSUBSCRIBE_PATH}/{{kind}}", apply, methods=["POST"]),
]
