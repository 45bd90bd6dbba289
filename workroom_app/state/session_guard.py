"""The one check every event passes before its handler runs (rx.App middleware).

1. Text inputs: any string in the event's arguments (form fields included) holding a control
   character is refused with a message naming the field, before any handler sees it
   (security/text_input.py), on every engine alike.
2. Page loads: Reflex's own page-load events (a tab connecting, a navigation) bind the tab to
   its login and run the page's loaders inside them (state/page_open.py).
3. Sessions: an event for any state derived from SessionState (every page's state) in a tab that
   is signed in runs only if the Cookie of the connection that sent it still carries the login
   the tab was bound to, and that login is still live: not revoked (log out, log out
   everywhere), not expired, the account not disabled. Otherwise the tab is signed out (nothing
   private stays in its state) and sent to /login, and the handler does not run. So a copied
   cookie stops working for every open connection the moment the session is revoked, and a tab
   id (Reflex's client token) sent without the cookie gets nothing.

Whether a login is live is one indexed query (accounts.live_login; benchmarks/
bench_session_check.py measures it), skipped while this process remembers the login as just
found live (security/live_logins.py: at most a few seconds, forgotten the moment any login of
the account changes, here or in another process).

Written as a Reflex middleware so it cannot be forgotten by a new handler or a new page:
app.add_middleware(SessionGuard()) in workroom_app.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import reflex as rx
from reflex.middleware import Middleware
from reflex.state import BaseState, StateUpdate
from reflex_base.event import Event, fix_events
from reflex_base.registry import RegistrationContext

from workroom_app.billing import accounts
from workroom_app.db import read_session
from workroom_app.routes import LOGIN_ROUTE
from workroom_app.security.live_logins import live_logins
from workroom_app.security.text_input import ControlCharacterError, check_payload
from workroom_app.state import page_open
from workroom_app.state.session import SessionState, request_token

# The guard re-resolves the login from the cookie itself (it is what signs a tab in).
_UNCHECKED_HANDLERS = frozenset({"guard"})


def read_live_login(hashed: str) -> tuple[int, datetime] | None:
    """Blocking: (account id, expiry) of a live login, or None. One indexed query."""
    with read_session() as session:
        return accounts.live_login(session, hashed)


async def session_is_live(session: SessionState) -> bool:
    """True when the event's connection still holds this tab's live login."""
    hashed = accounts.token_hash(request_token(session))
    if hashed is None or hashed != session._token_hash:
        return False
    known = live_logins.account_of(hashed)
    if known is not None:
        return known == session._account_id
    epoch = live_logins.epoch
    found = await asyncio.to_thread(read_live_login, hashed)
    if found is None:
        return False
    live_logins.remember(hashed, found[0], found[1], epoch)
    return found[0] == session._account_id


def _target_state(event: Event) -> type[BaseState] | None:
    registered = RegistrationContext.get().event_handlers.get(event.name)
    if registered is None:
        return None
    states = getattr(registered, "states", None) or ()
    return states[0] if states else None


async def _update(state: BaseState, token: str, *specs: Any) -> StateUpdate:
    delta = await state._get_resolved_delta()
    state._clean()
    return StateUpdate(delta=delta, events=fix_events(list(specs), token))


def forget_everything(state: BaseState) -> None:
    """Sign the tab out: every loaded account state back to its defaults (balance, lists,
    dialogs, backend vars), so nothing of the account stays in this tab's state."""
    stack = [state]
    while stack:
        current = stack.pop()
        if isinstance(current, SessionState):
            current.reset()
            SessionState._apply(current, None)  # (a page state may define its own _apply)
        stack.extend(current.substates.values())


class SessionGuard(Middleware):
    async def preprocess(self, app: rx.App, state: BaseState, event: Event) -> StateUpdate | None:
        token = str((state.router_data or {}).get("token") or "")
        try:
            check_payload(event.payload)
        except ControlCharacterError as exc:
            return StateUpdate(events=fix_events([rx.toast.error(str(exc))], token))
        if page_open.opens_page(event):
            # Reflex's own page-load event: the guard and the page's loaders run inside it.
            await page_open.open_page(state, event, app.backend_exception_handler)
            return None
        target = _target_state(event)
        if target is None or not issubclass(target, SessionState):
            return None
        if event.name.rpartition(".")[2] in _UNCHECKED_HANDLERS:
            return None
        session = await state.get_state(SessionState)
        if session._account_id is None:
            return None  # signed out: handlers refuse on their own, the guard redirects
        if await session_is_live(session):
            return None
        forget_everything(state)
        return await _update(state, token, rx.redirect(LOGIN_ROUTE, replace=True))
