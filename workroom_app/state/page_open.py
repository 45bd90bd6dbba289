"""Opening a page in one event.

Reflex runs a page's on_load handlers as a chain of events after the hydrate: for /generate
that was five events in turn (hydrate_and_load, on_load_internal, the guard, the page's load,
set_is_hydrated), each passing the state manager and the event queue, where the bare app's
page load is one. So Workroom registers no on_load with Reflex (workroom_app.py): Reflex's own
page-load events (`hydrate_and_load` when a tab connects or reconnects, `on_load_internal` on
every navigation inside the app) finish hydrating in that one event, and the session guard
middleware (state/session_guard.py) first runs `open_page` inside it: bind the tab to its
login (session.bind_tab), then the page's loaders, in order, on the state tree the event
already holds.

The loaders are the pages' own event handlers (`app_page(on_load=...)`), run through Reflex's
process_event as a chained event would be: their arguments, yields and returned events behave
the same. On a (re)connect the full state snapshot follows in the same event, so their changes
reach the browser with it and are not sent twice; on a navigation each loader's delta is sent
as it finishes, as before. A loader that raises is reported the way a failing event is (the
app's backend exception handler: a toast and the log) and the page still opens.

A tab whose state the server no longer has (a Redis entry expired under a connected tab) and
whose first event is not a page load is hydrated by Reflex without a page load: that event
finds the tab signed out (handlers send it to /login, whose guard sends a signed-in visitor
back to the landing page, re-bound).
"""

from __future__ import annotations

import logging
from typing import Any

from reflex.state import BaseState, OnLoadInternalState, State
from reflex_base.event import Event, EventHandler
from reflex_base.event.processor.base_state_processor import chain_updates, process_event

from workroom_app.state.session import SessionState, bind_tab, route_of

log = logging.getLogger(__name__)

# Reflex's answer for an address that is no page: its "404" route (pages/not_found.py).
NOT_FOUND_ROUTE = "404"

_loaders: dict[str, list[EventHandler]] = {}


def register(route: str, loaders: list[Any]) -> None:
    """Record the on_load handlers of a page (run after the guard, in order)."""
    key = route if route == NOT_FOUND_ROUTE else _normalised(route)
    if key in _loaders:
        raise ValueError(f"two pages registered for {route}")
    for loader in loaders:
        if not isinstance(loader, EventHandler) or loader.state is None:
            raise TypeError(f"a page's on_load must be a state's event handler: {loader!r}")
    _loaders[key] = list(loaders)


def _normalised(path: str) -> str:
    path = "/" + path.strip("/")
    return "/" if path == "/index" else path


def loaders_for(path: str) -> list[EventHandler]:
    """The on_load handlers of the page at `path` (every route is static), or the not-found
    page's."""
    found = _loaders.get(_normalised(path))
    return list(found if found is not None else _loaders.get(NOT_FOUND_ROUTE, []))


_HYDRATE = f"{State.get_full_name()}.hydrate_and_load"
_NAVIGATE = f"{OnLoadInternalState.get_full_name()}.on_load_internal"


def opens_page(event: Event) -> bool:
    """True for Reflex's two page-load events: a tab (re)connecting, a navigation."""
    return event.name in (_HYDRATE, _NAVIGATE)


async def open_page(root: BaseState, event: Event, exception_handler: Any) -> None:
    """Bind the tab, then run the page's loaders, inside the page-load event `event`."""
    session = await root.get_state(SessionState)
    # hydrate_and_load sends the whole state after this: no separate deltas before it.
    flush_root = None if event.name == _HYDRATE else root
    redirect = await bind_tab(session)
    if redirect is not None:
        await chain_updates(redirect, handler_name="bind_tab", root_state=flush_root)
        return
    for loader in loaders_for(route_of(session)):
        state = await root.get_state(loader.state)
        try:
            await process_event(handler=loader, payload={}, state=state, root_state=flush_root)
        except Exception as exc:  # noqa: BLE001  (the page still opens; the failure is reported)
            log.exception("loading %s failed", route_of(session))
            answer = exception_handler(exc) if exception_handler is not None else None
            await chain_updates(answer, handler_name="open_page", root_state=flush_root)
