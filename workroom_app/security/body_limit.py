"""Every HTTP request body is capped while it is read, chunked or not.

An ASGI wrapper around the whole backend (rx.App(api_transformer=[..., cap_request_bodies])):
a declared Content-Length over the route's cap is answered 413 before anything is read; a body
without one (chunked) is counted as it arrives and the read stops with 413 at the first chunk
past the cap, so no request can make the server buffer more than the cap. Caps by path: the
Stripe webhook 1 MB (Stripe's events are a few KB), uploads the largest upload plus the form's
overhead, everything else 64 KB (our forms are tiny; the websocket is not an HTTP body).

It also answers 400, not 500, when the upload endpoint is asked to run a handler that is not an
upload handler (Reflex would fail on it after reading the body).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from starlette.exceptions import HTTPException

from workroom_app.generation.uploads import MAX_BYTES

MB = 1024 * 1024
DEFAULT_CAP = 64 * 1024
WEBHOOK_CAP = 1 * MB
UPLOAD_PATH = "/_upload"
TOO_LARGE = "The request body is too large."


class _BodyTooLarge(HTTPException):
    """Raised from receive(): Starlette's exception middleware inside the app turns it into the
    413 response (an ordinary exception would become a 500 there first)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=TOO_LARGE)


def _caps() -> dict[str, int]:
    # "/_event/": Socket.IO's long-polling fallback posts events over HTTP (the websocket is
    # not capped here); the same 1 MB as Socket.IO's own default buffer.
    return {
        "/api/stripe/webhook": WEBHOOK_CAP,
        UPLOAD_PATH: max(MAX_BYTES.values()) + MB,
        "/_event/": MB,
    }


async def _respond(send, status: int, message: str) -> None:  # noqa: ANN001
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def cap_request_bodies(app: Any, upload_handlers: Callable[[], Iterable[str]] | None = None) -> Any:
    """Wrap an ASGI app. `upload_handlers()` names the event handlers /_upload may run."""
    caps: dict[str, int] | None = None

    async def capped(scope, receive, send):  # noqa: ANN001
        nonlocal caps
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if caps is None:
            caps = _caps()
        path = scope.get("path", "")
        cap = caps.get(path, DEFAULT_CAP)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared and (not declared.isdigit() or int(declared) > cap):
            await _respond(send, 413, TOO_LARGE)
            return
        if path == UPLOAD_PATH and upload_handlers is not None and scope.get("method") == "POST":
            handler = headers.get(b"reflex-event-handler", b"").decode("latin-1")
            if handler and handler not in set(upload_handlers()):
                await _respond(send, 400, "That handler does not take uploads.")
                return

        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyTooLarge
            return message

        async def watching_send(message):  # noqa: ANN001
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, counting_receive, watching_send)
        except _BodyTooLarge:
            if not started:
                await _respond(send, 413, TOO_LARGE)
        except Exception:
            if received > cap and not started:  # an inner layer wrapped our signal
                await _respond(send, 413, TOO_LARGE)
                return
            raise

    return capped
