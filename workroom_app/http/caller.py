"""Who is asking, for the HTTP routes that serve a signed-in user's own things (usage CSV,
invoice PDFs, media): the login cookie (security/session_cookie.py), looked up server-side.
The cookie is only a lookup key; a missing, oversized, unknown, expired or revoked one is
nobody."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from workroom_app.billing import accounts
from workroom_app.db import read_session
from workroom_app.security.session_cookie import COOKIE_NAME

# Far longer than any token we issue; a longer cookie is not looked up at all.
MAX_TOKEN = 512


def account_id_for_token(token: str) -> int | None:
    """The live account behind a login token, or None (blocking: call it in a thread)."""
    with read_session() as session:
        account = accounts.lookup_session(session, token)
        return account.id if account is not None else None


def account_and_staff_for_token(token: str) -> tuple[int, bool] | None:
    """The live account behind a login token and whether it is staff, or None (blocking)."""
    with read_session() as session:
        account = accounts.lookup_session(session, token)
        return (account.id, accounts.is_staff(account)) if account is not None else None


def _token(request: Request) -> str | None:
    token = request.cookies.get(COOKIE_NAME, "")
    return token if token and len(token) <= MAX_TOKEN else None


async def caller_account_id(request: Request) -> int | None:
    """The signed-in account that sent this request, or None."""
    token = _token(request)
    return None if token is None else await run_in_threadpool(account_id_for_token, token)


async def caller_account_and_staff(request: Request) -> tuple[int, bool] | None:
    """The signed-in account that sent this request and whether it is staff, or None
    (for routes where staff may see what is not theirs, e.g. a job's result)."""
    token = _token(request)
    return None if token is None else await run_in_threadpool(account_and_staff_for_token, token)
