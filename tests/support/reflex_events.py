"""Drive Reflex states through the real event path, as the websocket handler does.

Events are queued on a BaseStateEventProcessor exactly as a browser's are, so argument
coercion, unknown arguments and the state tree behave as in production. Each state test
subclasses EventBrowser with its page's path and its steps (open the page, log in), built
from `send`, `sign_in` and `state`; `run` drives a scenario and fails on any exception an
event raised that the test did not name with `refused=`.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.token import BaseStateToken
from reflex.state import OnLoadInternalState, State
from reflex_base.event import Event
from reflex_base.event.processor import BaseStateEventProcessor
from reflex_base.registry import RegistrationContext
from starlette.applications import Starlette
from starlette.testclient import TestClient

import workroom_app.workroom_app as workroom  # registers every state, like the server
from workroom_app.billing import clock
from workroom_app.security.body_limit import cap_request_bodies
from workroom_app.state.session import SessionState


class Recorder:
    """Stands in for the websocket namespace: keeps what would go to the browser."""

    def __init__(self) -> None:
        self.updates: list[Any] = []
        self.by_token: dict[str, list[Any]] = {}  # the same updates, per tab

    async def emit_update(self, update, token):  # noqa: ANN001
        self.updates.append(update)
        self.by_token.setdefault(token, []).append(update)


def frontend_text(updates: list[Any], *, ensure_ascii: bool = True) -> str:
    """The events (toasts, redirects) in `updates`, one `name payload` line each."""
    out = []
    for update in updates:
        for ev in getattr(update, "events", None) or []:
            out.append(
                f"{ev.name} {json.dumps(ev.payload, default=str, ensure_ascii=ensure_ascii)}"
            )
    return "\n".join(out)


class UnexpectedHandlerError(AssertionError):
    """An event raised and the test did not say it would be refused: in production the user would
    see a generic error toast. Every input, forged or not, must get a clear answer instead."""


class EventBrowser:
    """One browser tab: a client token and the events it sends.

    `send` runs one event through the processor and returns what it sent to this tab (toasts,
    redirects, scripts). An event that raises fails the test, unless the call says
    `refused=SomeError` (then it must raise that, or the test fails too): Reflex's own refusal of
    a forged event (unknown arguments, a wrong type) is an exception, and the test says which.
    Pages subclass it with their path and their own steps (open, log in), built from `send`."""

    path = "/"
    # The router keeps a `?query` out of the pathname; a page whose handlers read the query from
    # the path (Plans, Checkout) sends it as the router does.
    query_in_path = True
    # frontend_text's escaping of non-ASCII characters (the staff pages compare "—" as written).
    ascii_text = True
    # Seconds one event (and the events it starts) may take before the test fails.
    timeout = 10.0

    def __init__(
        self, manager: StateManagerMemory, processor: BaseStateEventProcessor, recorder: Recorder
    ) -> None:
        self.token = str(uuid.uuid4())
        self.manager = manager
        self.processor = processor
        self.recorder = recorder
        # The login cookie this tab's websocket connection carries (the server sets it,
        # HttpOnly, through /api/auth/session); "" for none. Sent as the connection's Cookie
        # header with every event, as Reflex does, so the session guard sees what it would.
        self.cookie = ""
        self.ip = "127.0.0.1"

    def event(
        self, state_cls, handler: str, payload: dict[str, Any], *, query_in_path: bool = True
    ) -> Event:
        """The event a browser on self.path sends; query_in_path=False keeps a `?query`
        out of the pathname, as the router does."""
        pathname = self.path if query_in_path else self.path.split("?")[0]
        headers = {"cookie": f"workroom_session={self.cookie}"} if self.cookie else {}
        return Event(
            name=f"{state_cls.get_full_name()}.{handler}",
            payload=payload,
            router_data={
                "pathname": pathname,
                "asPath": self.path,
                "query": {},
                "headers": headers,
                "ip": self.ip,
                "token": self.token,
            },
        )

    @staticmethod
    def is_registered(event: Event) -> bool:
        # For no such handler the server runs nothing and the future never resolves.
        return event.name in RegistrationContext.get().event_handlers

    async def send(
        self,
        state_cls,
        handler: str,
        *,
        refused: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        chained: bool = True,
        **payload: Any,
    ) -> str:
        """Run one event as this tab; returns what it sent to the tab. With chained=False, do not
        wait for the events it starts (a background loop never ends on its own)."""
        event = self.event(state_cls, handler, payload, query_in_path=self.query_in_path)
        return await self.send_event(
            event, refused=refused, chained=chained, label=f"{state_cls.__name__}.{handler}"
        )

    async def send_event(
        self,
        event: Event,
        *,
        refused: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        chained: bool = True,
        label: str = "",
    ) -> str:
        label = label or event.name
        mine = self.recorder.by_token.setdefault(self.token, [])
        before = len(mine)
        future = await self.processor.enqueue(self.token, event)
        if not self.is_registered(event):
            # The server logs "No registered handler" and runs nothing: give the queue a moment.
            assert refused is None, f"{label} is no handler: nothing runs, nothing raises"
            await asyncio.sleep(0.05)
            return ""
        try:
            await asyncio.wait_for(future.wait_all() if chained else future, self.timeout)
        except TimeoutError:
            raise AssertionError(f"{label} did not finish in {self.timeout} s") from None
        except Exception as exc:
            if refused is None or not isinstance(exc, refused):
                raise UnexpectedHandlerError(
                    f"{label} raised {exc.__class__.__name__}: {exc}"
                ) from exc
            exc.expected_by_test = True  # type: ignore[attr-defined]
        else:
            if refused is not None:
                raise AssertionError(f"{label} ran; the test expected it refused ({refused})")
        return frontend_text(mine[before:], ensure_ascii=self.ascii_text)

    async def sign_in(self, login_token: str) -> None:
        """The tab's connection carries the HttpOnly login cookie; the guard binds the tab."""
        self.cookie = login_token
        await self.send(SessionState, "guard")

    async def connect(self, path: str) -> str:
        """Open a tab at `path` as the browser does on (re)connecting: Reflex's one
        hydrate_and_load event (the guard and the page's loaders run inside it)."""
        self.path = path
        return await self.send(State, "hydrate_and_load")

    async def navigate(self, path: str) -> str:
        """Follow a link inside the app to `path`: Reflex's on_load_internal event."""
        self.path = path
        return await self.send(OnLoadInternalState, "on_load_internal")

    async def open(self, path: str, state_cls) -> str:
        """Go to `path` and run its page's load, as the router does on arrival."""
        self.path = path
        return await self.send(state_cls, "load")

    async def state(self, cls):
        root = await self.manager.get_state(BaseStateToken(ident=self.token, cls=State))
        return await root.get_state(cls)


def run(browser_cls: type[EventBrowser], scenario, *, now=None) -> None:  # noqa: ANN001
    """Run `scenario(new_tab)` against one in-memory state manager; `new_tab()` opens a
    browser_cls tab. With `now`, the billing clock is pinned there throughout.

    Any exception raised while processing an event fails the run (after the scenario), unless
    the `send` that caused it said `refused=` with its type: the production exception handler
    would swallow it into a toast, so a crashing handler would otherwise pass every "changes
    nothing" test. This also catches the events a handler chains, which `send` does not see."""
    raised: list[BaseException] = []
    app_handler = workroom.app.backend_exception_handler

    def on_backend_exception(exc: Exception):  # noqa: ANN202
        raised.append(exc)
        return app_handler(exc)

    async def main():
        manager = StateManagerMemory()
        recorder = Recorder()
        # The app's middleware too: the session guard checks every event, as in production.
        processor = BaseStateEventProcessor(
            backend_exception_handler=on_backend_exception, middleware=workroom.app
        )
        processor.configure(state_manager=manager, event_namespace=recorder)
        async with processor:
            await scenario(lambda: browser_cls(manager, processor, recorder))
        unexpected = [e for e in raised if not getattr(e, "expected_by_test", False)]
        if unexpected:
            first = unexpected[0]
            raise UnexpectedHandlerError(
                f"{len(unexpected)} event exception(s); first: {first.__class__.__name__}: {first}"
            ) from first

    # A page's loaders run inside the page-load event and report through the app's handler
    # (state/page_open.py): the run sees those failures too.
    workroom.app.backend_exception_handler = on_backend_exception
    try:
        if now is None:
            asyncio.run(main())
        else:
            with clock.pinned(now):
                asyncio.run(main())
    finally:
        workroom.app.backend_exception_handler = app_handler


# ------------------------------------------------------------ logging in the way a browser does

_TICKET = re.compile(r'\\"ticket\\";i\.value=\\"([^"\\]+)\\"')


def api_client():
    """The app's HTTP routes behind the same body cap as in production (Starlette TestClient)."""
    return TestClient(
        cap_request_bodies(Starlette(routes=workroom.API_ROUTES), workroom.upload_handler_names),
        base_url="http://testserver",
    )


def ticket_in(sent: str) -> str | None:
    """The one-time login ticket in what a log-in or sign-up sent to the browser (the script that
    POSTs it to /api/auth/session), or None."""
    match = _TICKET.search(sent)
    return match.group(1) if match else None


def redeem(ticket: str) -> str:
    """POST the ticket as the page's script does; returns the HttpOnly cookie the server set."""
    response = api_client().post(
        "/api/auth/session", data={"ticket": ticket}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    set_cookie = response.headers.get("set-cookie", "")
    match = re.search(r"workroom_session=([^;]+)", set_cookie)
    assert match, f"no session cookie in {set_cookie!r}"
    return match.group(1)
