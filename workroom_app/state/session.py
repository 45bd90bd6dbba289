"""The signed-in account, shared by every page.

The browser keeps only a random login token (a cookie); on every page load
`guard` looks it up server-side (billing.accounts.lookup_session) and fills the
backend var `_account_id`. Nothing the browser sends can set `_account_id`.

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

Page on_load handlers run after `guard` (pages.registry puts it first), so
`_account_id` is already resolved when they run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import reflex as rx

from workroom_app.billing import accounts
from workroom_app.settings import get_settings

LOGIN_ROUTE = "/login"
SIGNUP_ROUTE = "/signup"
# Where a signed-in visitor lands ("/" and the auth pages send them here).
LANDING_ROUTE = "/generate"  # where a signed-in user lands (issue 3)
STAFF_LANDING_ROUTE = "/staff"  # where staff land: the business overview (issue 10)


def landing_route(is_staff: bool) -> str:
    return STAFF_LANDING_ROUTE if is_staff else LANDING_ROUTE
PUBLIC_ROUTES = frozenset({LOGIN_ROUTE, SIGNUP_ROUTE})
SESSION_COOKIE = "workroom_session"


@dataclass(frozen=True)
class AccountView:
    """What the header needs about an account, read in one short transaction."""

    account_id: int
    email: str
    display_name: str
    is_staff: bool
    balance: int
    plan_key: str
    plan_name: str


def plan_display_name(plan_key: str) -> str:
    try:
        from workroom_app.billing import catalog
    except ImportError:  # catalog not installed yet
        return plan_key.title()
    try:
        return catalog.get_catalog().plan(plan_key).name
    except Exception:  # a plan retired from the catalog still has a name to show
        return plan_key.title()


def account_view(session, account) -> AccountView:  # noqa: ANN001
    """Blocking: the header data of `account`, read in the open `session`."""
    from workroom_app.billing import ledger

    plan_key = accounts.current_plan_key(session, account.id)
    return AccountView(
        account_id=account.id,
        email=account.email,
        display_name=account.display_name,
        is_staff=accounts.is_staff(account),
        balance=ledger.balance(session, account.id),
        plan_key=plan_key,
        plan_name=plan_display_name(plan_key),
    )


def read_account_view(token: str) -> AccountView | None:
    """Blocking: look up a login token and read the header data, or None."""
    from workroom_app.db import read_session

    with read_session() as session:
        account = accounts.lookup_session(session, token)
        return None if account is None else account_view(session, account)


def format_credits(amount: int) -> str:
    return f"{amount:,}"


def _route_of(state: rx.State) -> str:
    path = state.router.url.path or "/"
    return path.rstrip("/") or "/"


class SessionState(rx.State):
    # The browser's login token. Browser-written: only ever used as a lookup key.
    auth_token: str = rx.Cookie(
        "", name=SESSION_COOKIE, same_site="strict", max_age=get_settings().session_days * 86400
    )
    _account_id: int | None = None

    signed_in: bool = False
    email: str = ""
    display_name: str = ""
    is_staff: bool = False
    balance: int = 0
    balance_text: str = "0"
    plan_key: str = accounts.FREE_PLAN_KEY
    plan_name: str = "Free"

    # ------------------------------------------------------------- helpers
    def _apply(self, view: AccountView | None) -> None:
        if view is None:
            self._account_id = None
            self.signed_in = False
            self.email = ""
            self.display_name = ""
            self.is_staff = False
            self._set_balance(0)
            self.plan_key = accounts.FREE_PLAN_KEY
            self.plan_name = "Free"
            return
        self._account_id = view.account_id
        self.signed_in = True
        self.email = view.email
        self.display_name = view.display_name
        self.is_staff = view.is_staff
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
        token = self.auth_token if isinstance(self.auth_token, str) else ""
        view = await asyncio.to_thread(read_account_view, token) if token else None
        self._apply(view)
        return view is not None

    def _sign_in(self, token: str, view: AccountView) -> None:
        """Called by AuthState after a successful log-in or sign-up."""
        self.auth_token = token
        self._apply(view)

    # -------------------------------------------------------------- events
    async def guard(self):
        """on_load of every page: resolve the token, keep signed-out visitors out."""
        signed_in = await self._reload_account()
        route = _route_of(self)
        if not signed_in and route not in PUBLIC_ROUTES:
            return rx.redirect(LOGIN_ROUTE, replace=True)
        if signed_in and (route in PUBLIC_ROUTES or route == "/"):
            return rx.redirect(landing_route(self.is_staff), replace=True)
        return None

    async def refresh_balance(self):
        """Takes no arguments: the account is always the signed-in one."""
        if not await self._reload_account():
            return rx.redirect(LOGIN_ROUTE, replace=True)
        return None

    async def logout(self):
        token = self.auth_token if isinstance(self.auth_token, str) else ""
        if token:
            await asyncio.to_thread(_revoke, token)
        self.auth_token = ""
        self._apply(None)
        return rx.redirect(LOGIN_ROUTE, replace=True)


def _revoke(token: str) -> None:
    from workroom_app.db import write_session

    with write_session() as session:
        accounts.revoke_login(session, token)
