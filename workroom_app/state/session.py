"""The signed-in account, shared by every page.

The browser keeps only a random login token, in an HttpOnly cookie that the server sets and
clears (http/auth_routes.py); page script never sees it. The websocket's upgrade request
carries it (router headers), and on every page load `guard` looks it up server-side
(billing.accounts.lookup_session) and fills the backend vars `_account_id` and `_token_hash`.
Nothing the browser sends can set them, and Reflex's client token (a tab id the browser
chooses) identifies no one by itself.

Every later event of an account state is checked before its handler runs by ONE middleware,
state/session_guard.py: the cookie of the connection that sent the event must still be the
login this tab was bound to, and that login must still be live (not revoked or expired, the
account not disabled). Otherwise the tab is signed out and sent to /login.

Using it from another state (pick one):

    class UsageState(SessionState):          # a substate: inherits _account_id,
        async def load(self):                # balance, email, ... directly
            account_id = self._account_id
            if account_id is None:           # the guard already redirected
                return

    class GenerateState(rx.State):           # or any state, via get_state
        async def submit(self):
            session = await self.get_state(SessionState)
            if session._account_id is None:
                return rx.redirect(LOGIN_ROUTE)
            ...                              # debit through billing/
            await session._reload_account()  # header balance + plan update

A page's on_load handlers run after the guard, in the same event (state/page_open.py), so
`_account_id` is already resolved when they run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import reflex as rx

from workroom_app.billing import accounts, catalog
from workroom_app.billing.email_confirmation import queue_confirmation
from workroom_app.db import read_session, write_session
from workroom_app.models import Account
from workroom_app.routes import INDEX_ROUTE, LOGIN_ROUTE, PUBLIC_ROUTES, landing_route
from workroom_app.security import rate_limits, signing
from workroom_app.security.live_logins import live_logins
from workroom_app.security.session_cookie import token_from_cookie_header

# Told (the tab's client token, its account id or None, the hash of its login or None) by every
# page load's guard. The live push (state/live.py) keeps its map of which tab shows which account
# this way: no event and no state of its own in every tab.
PageLoadListener = Callable[[str, int | None, str | None], None]
_page_load_listeners: list[PageLoadListener] = []


def on_page_load(listener: PageLoadListener) -> None:
    if listener not in _page_load_listeners:
        _page_load_listeners.append(listener)


LOGOUT_PATH = "/api/auth/logout"


def post_form_script(action: str, fields: dict[str, str] | None = None) -> str:
    """Page script that submits a same-origin POST form (a full page navigation, so the
    server's Set-Cookie applies and the next page opens a fresh websocket carrying it)."""
    inputs = "".join(
        f"i=document.createElement('input');i.type='hidden';i.name={json.dumps(k)};"
        f"i.value={json.dumps(v)};f.appendChild(i);"
        for k, v in (fields or {}).items()
    )
    return (
        "(()=>{const f=document.createElement('form');let i;f.method='POST';"
        f"f.action={json.dumps(action)};{inputs}document.body.appendChild(f);f.submit();}})()"
    )


@dataclass(frozen=True)
class AccountView:
    """What the header needs about an account (billing.accounts.Header + the plan's name)."""

    account_id: int
    email: str
    display_name: str
    is_staff: bool
    email_confirmed: bool
    balance: int
    plan_key: str
    plan_name: str
    timezone: str = "UTC"
    # When the login it was read through ends (None when read by account id).
    login_expires_at: datetime | None = None


def plan_display_name(plan_key: str) -> str:
    try:
        return catalog.get_catalog().plan(plan_key).name
    except catalog.UnknownPlan:  # a plan retired from the catalog still has a name to show
        return plan_key.title()


def view_of(header: accounts.Header) -> AccountView:
    return AccountView(
        account_id=header.account_id,
        email=header.email,
        display_name=header.display_name,
        is_staff=header.is_staff,
        email_confirmed=header.email_confirmed,
        balance=header.balance,
        plan_key=header.plan_key,
        plan_name=plan_display_name(header.plan_key),
        timezone=header.timezone,
        login_expires_at=header.login_expires_at,
    )


def read_account_view(token: str) -> AccountView | None:
    """Blocking: look up a login token and read the header data, or None. One query
    (accounts.header_for_login): every page load runs it."""
    with read_session() as session:
        header = accounts.header_for_login(session, token)
    return None if header is None else view_of(header)


def read_account_view_by_id(account_id: int) -> AccountView | None:
    """Blocking: the header data of an account by id (the live push), one query."""
    with read_session() as session:
        header = accounts.header_of(session, account_id)
    return None if header is None else view_of(header)


def format_credits(amount: int) -> str:
    return f"{amount:,}"


def route_of(state: rx.State) -> str:
    path = state.router.url.path or "/"
    return path.rstrip("/") or "/"


def request_token(state: rx.State) -> str:
    """The login token in the Cookie header of the connection that sent the current event."""
    root = state._get_root_state()  # router data lives on the root state only
    headers = (root.router_data or {}).get("headers") or {}
    return token_from_cookie_header(headers.get("cookie", "") if isinstance(headers, dict) else "")


class SessionState(rx.State):
    _account_id: int | None = None
    # SHA-256 of the login token this tab was signed in with (the session guard compares it
    # with the cookie of every event's connection).
    _token_hash: str | None = None
    # The account's time zone as the last page load read it (pages read their rows in it).
    _timezone: str = "UTC"

    signed_in: bool = False
    email: str = ""
    display_name: str = ""
    is_staff: bool = False
    balance: int = 0
    balance_text: str = "0"
    plan_key: str = accounts.FREE_PLAN_KEY
    plan_name: str = "Free"
    email_confirmed: bool = True
    confirmation_note: str = ""
    # What the "confirm your email" banner promises (the catalog's trial, read once per sign-in).
    trial_credits: int = 0

    # ------------------------------------------------------------- helpers
    def _apply(self, view: AccountView | None) -> None:
        if view is None:
            self._account_id = None
            self._token_hash = None
            self._timezone = "UTC"
            self.signed_in = False
            self.email_confirmed = True
            self.email = ""
            self.display_name = ""
            self.is_staff = False
            self._set_balance(0)
            self.plan_key = accounts.FREE_PLAN_KEY
            self.plan_name = "Free"
            return
        self._account_id = view.account_id
        self._timezone = view.timezone
        self.signed_in = True
        self.email = view.email
        self.display_name = view.display_name
        self.is_staff = view.is_staff
        self.email_confirmed = view.email_confirmed
        if not view.email_confirmed:
            self.trial_credits = accounts.trial_credits()
        self._set_balance(view.balance)
        self.plan_key = view.plan_key
        self.plan_name = view.plan_name

    def _set_balance(self, amount: int) -> None:
        self.balance = int(amount)
        self.balance_text = format_credits(self.balance)

    async def _reload_account(self) -> bool:
        """Re-read the account behind the cookie (balance, plan, role). False when signed out.

        Other states call this after they change credits or the plan.
        """
        token = request_token(self)
        epoch = live_logins.epoch
        view = await asyncio.to_thread(read_account_view, token) if token else None
        self._apply(view)
        self._token_hash = accounts.token_hash(token) if view is not None else None
        if view is not None and self._token_hash and view.login_expires_at is not None:
            # This tab's next events need not ask again whether the login is live.
            live_logins.remember(self._token_hash, view.account_id, view.login_expires_at, epoch)
        return view is not None

    # -------------------------------------------------------------- events
    async def guard(self):
        """Bind this tab to the login its connection carries, as every page load does
        (state/page_open.py runs bind_tab inside Reflex's own page-load event)."""
        return await bind_tab(self)

    async def refresh_balance(self):
        """Takes no arguments: the account is always the signed-in one."""
        if not await self._reload_account():
            return rx.redirect(LOGIN_ROUTE, replace=True)
        return None

    async def logout(self):
        """Revoke this login at once, then let the server clear the cookie (the POST answers
        with an expired Set-Cookie and sends the page to /login)."""
        token = request_token(self)
        if token:
            await asyncio.to_thread(_revoke, token)
        self._apply(None)
        return rx.call_script(post_form_script(LOGOUT_PATH))

    async def logout_everywhere(self):
        """Revoke every session of this account (other browsers and devices included): each of
        their open tabs is refused on its next event and sent to /login."""
        account_id = self._account_id
        if account_id is None:
            return rx.redirect(LOGIN_ROUTE, replace=True)
        await asyncio.to_thread(_revoke_all, account_id)
        self._apply(None)
        return rx.call_script(post_form_script(LOGOUT_PATH))

    async def resend_confirmation(self):
        """Email a new confirmation link (the trial follows confirmation); rate limited."""
        account_id = self._account_id
        if account_id is None or self.email_confirmed:
            return None
        refusal = rate_limits.confirmation_attempt(account_id)
        if refusal is not None:
            self.confirmation_note = refusal.message("confirmation emails")
            return rx.toast.error(self.confirmation_note)
        await asyncio.to_thread(send_confirmation, account_id)
        self.confirmation_note = f"We sent a new link to {self.email}."
        return rx.toast.success(self.confirmation_note)


async def bind_tab(session: SessionState) -> rx.event.EventSpec | None:
    """The page-load guard: resolve the connection's login cookie (one query), show its account
    in the header, register the tab for the live push, and keep signed-out visitors out.
    Returns the redirect the tab must follow instead of opening the page, or None."""
    signed_in = await session._reload_account()
    for listener in _page_load_listeners:
        listener(session.router.session.client_token, session._account_id, session._token_hash)
    route = route_of(session)
    if not signed_in and route not in PUBLIC_ROUTES:
        return rx.redirect(LOGIN_ROUTE, replace=True)
    if signed_in and (route in PUBLIC_ROUTES or route == INDEX_ROUTE):
        return rx.redirect(landing_route(session.is_staff), replace=True)
    return None


def _revoke(token: str) -> None:
    with write_session() as session:
        accounts.revoke_login(session, token)


def _revoke_all(account_id: int) -> int:
    with write_session() as session:
        return accounts.revoke_all_logins(session, account_id)


def send_confirmation(account_id: int) -> None:
    """Blocking: queue a confirmation email for the account (unless already confirmed)."""
    signing.ensure_secret()  # before the transaction: on first use it writes the secret itself
    with write_session() as session:
        account = session.get(Account, account_id)
        if account is not None and account.email_confirmed_at is None:
            queue_confirmation(session, account)
