"""Drive Reflex states through the real event path, as the websocket handler does.

Events are queued on a BaseStateEventProcessor exactly as a browser's are, so argument
coercion, unknown arguments and the state tree behave as in production. Each state test
subclasses EventBrowser with its page's path and its own `send` (how long to wait, what
to return), built from `event`, `is_registered` and `state`.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.token import BaseStateToken
from reflex.state import State
from reflex_base.event import Event
from reflex_base.event.processor import BaseStateEventProcessor, base_state_processor
from reflex_base.registry import RegistrationContext

import workroom_app.workroom_app as workroom  # registers every state, like the server
from workroom_app.billing import clock


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


class EventBrowser:
    """One browser tab: a client token and the events it sends."""

    path = "/"
    # Whether run() gives the tab a Recorder of what goes to the browser.
    records = False

    def __init__(
        self,
        manager: StateManagerMemory,
        processor: BaseStateEventProcessor,
        recorder: Recorder | None = None,
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

    async def state(self, cls):
        root = await self.manager.get_state(BaseStateToken(ident=self.token, cls=State))
        return await root.get_state(cls)


WORKROOM_PACKAGE = Path(workroom.__file__).resolve().parent
_real_process_event = base_state_processor.process_event


def _traceback_reaches_workroom(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(WORKROOM_PACKAGE):
            return True
        tb = tb.tb_next
    return False


async def _process_event_marking_crashes(*args, **kwargs):  # noqa: ANN002, ANN003
    """Reflex's process_event, marking an exception that came out of Workroom's
    code. The mark is taken here because the exception reaches the exception
    handler through a future, whose re-raise has lost the handler's frames."""
    try:
        return await _real_process_event(*args, **kwargs)
    except Exception as exc:
        if _traceback_reaches_workroom(exc):
            exc.raised_in_workroom = True  # type: ignore[attr-defined]
        raise


def _raised_in_workroom(exc: BaseException) -> bool:
    return getattr(exc, "raised_in_workroom", False)


class UnexpectedHandlerError(AssertionError):
    """A handler raised: in production the user would see a generic error toast.
    Every input, forged or not, must get a clear answer instead."""


def run(
    browser_cls: type[EventBrowser],
    scenario,
    *,
    now=None,  # noqa: ANN001
    expected_errors: tuple[type[BaseException], ...] = (),
) -> None:
    """Run `scenario(new_tab)` against one in-memory state manager; `new_tab()` opens a
    browser_cls tab. With `now`, the billing clock is pinned there throughout.

    Any exception raised inside Workroom's code fails the run (after the
    scenario), unless it is an instance of `expected_errors`: the production
    exception handler would swallow it into a toast, so a crashing handler would
    otherwise pass every "changes nothing" test. Reflex's own refusal of a
    malformed event (unknown arguments, no such handler: no Workroom frame in the
    traceback, the handler never ran) is what a forged event should get."""
    raised: list[BaseException] = []

    def on_backend_exception(exc: Exception):  # noqa: ANN202
        if _raised_in_workroom(exc) and not isinstance(exc, expected_errors):
            raised.append(exc)
        return workroom.app.backend_exception_handler(exc)

    async def main():
        manager = StateManagerMemory()
        recorder = Recorder() if browser_cls.records else None
        # The app's middleware too: the session guard checks every event, as in production.
        processor = BaseStateEventProcessor(
            backend_exception_handler=on_backend_exception, middleware=workroom.app
        )
        if recorder is None:
            processor.configure(state_manager=manager)
        else:
            processor.configure(state_manager=manager, event_namespace=recorder)
        async with processor:
            await scenario(lambda: browser_cls(manager, processor, recorder))
        if raised:
            first = raised[0]
            raise UnexpectedHandlerError(
                f"{len(raised)} handler exception(s); first: {first.__class__.__name__}: {first}"
            ) from first

    base_state_processor.process_event = _process_event_marking_crashes
    try:
        if now is None:
            asyncio.run(main())
        else:
            with clock.pinned(now):
                asyncio.run(main())
    finally:
        base_state_processor.process_event = _real_process_event


# ------------------------------------------------------------ logging in the way a browser does

_TICKET = re.compile(r'\\"ticket\\";i\.value=\\"([^"\\]+)\\"')


def api_client():
    """The app's HTTP routes behind the same body cap as in production (Starlette TestClient)."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from workroom_app.security.body_limit import cap_request_bodies

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


def sent_text(browser: EventBrowser) -> str:
    """Everything sent to this browser's recorder so far (toasts, redirects, scripts)."""
    return frontend_text(browser.recorder.updates) if browser.recorder is not None else ""
