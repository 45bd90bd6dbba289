"""The local generation service that ships with the app.

A small Starlette app speaking the same prediction API as a hosted model
service (see providers/http.py), so the worker talks to it over HTTP exactly
as it would to a hosted one. Run it with `workroom local-renderer` or let
`workroom worker` start it (127.0.0.1, port from WORKROOM_LOCAL_PROVIDER_URL).

Progress advances over `render_seconds`. Failing on purpose, to see refunds:
- a prompt or voiceover text containing the marker "[fail]" fails half-way
  with "Failed on purpose ([fail] marker)";
- "[reject]" is reported as a content-policy refusal (status "rejected");
- WORKROOM_LOCAL_FAILURE_RATE (0-1) fails that share of jobs at random.
Predictions live in memory: if the service restarts, the worker sees "no
longer knows this job" and fails the job with a refund.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from workroom_app.billing import catalog
from workroom_app.generation import renderers
from workroom_app.settings import get_settings

FAIL_MARKER = "[fail]"
REJECT_MARKER = "[reject]"
MAX_BODY_BYTES = 160 * 1024 * 1024
MAX_PREDICTIONS = 1000  # oldest finished ones are dropped beyond this


@dataclass
class Prediction:
    id: str
    model: str
    input: dict[str, Any]
    created: float
    fail_with: str | None = None
    reject: bool = False
    canceled: bool = False
    output: list[tuple[bytes, str]] | None = None  # the files, in order (N images: N files)
    error: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _contains_marker(inputs: dict[str, Any], marker: str) -> bool:
    return any(
        isinstance(inputs.get(k), str) and marker in inputs[k].lower() for k in ("prompt", "text")
    )


def create_app(
    *,
    render_seconds: float | None = None,
    failure_rate: float | None = None,
    rng: random.Random | None = None,
) -> Starlette:
    settings = get_settings()
    render_seconds = settings.local_render_seconds if render_seconds is None else render_seconds
    failure_rate = settings.local_failure_rate if failure_rate is None else failure_rate
    rng = rng or random.Random()
    predictions: dict[str, Prediction] = {}
    idempotency: dict[str, tuple[str, str]] = {}  # key -> (prediction id, body hash)

    def _progress(p: Prediction) -> float:
        if render_seconds <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - p.created) / render_seconds)

    async def _view(p: Prediction, request: Request) -> dict[str, Any]:
        frac = _progress(p)
        body: dict[str, Any] = {"id": p.id, "model": p.model, "output": None, "error": None}
        if p.canceled:
            body.update(status="canceled", progress=int(frac * 100))
        elif (p.fail_with or p.reject) and frac >= 0.5:
            body.update(
                status="failed",
                progress=50,
                error=p.fail_with or "Rejected by the content policy ([reject] marker).",
            )
        elif frac < 1.0:
            body.update(
                status="starting" if frac < 0.05 else "processing", progress=int(frac * 100)
            )
        else:
            async with p.lock:
                if p.output is None and p.error is None:
                    try:
                        p.output = await asyncio.to_thread(renderers.render, p.model, p.input)
                    except Exception as exc:  # noqa: BLE001 - a bad input the renderer cannot draw
                        p.error = f"The local renderer could not draw this: {exc}"
            if p.error:
                body.update(status="failed", progress=100, error=p.error)
            else:
                # One file: its URL, as most model APIs answer; several: a list of URLs.
                urls = [
                    str(request.url_for("output_n", pid=p.id, index=str(i + 1)))
                    for i in range(len(p.output or []))
                ]
                body.update(
                    status="succeeded", progress=100, output=urls[0] if len(urls) == 1 else urls
                )
        return body

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "service": "workroom-local-renderer"})

    async def create(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse({"detail": "request too large"}, status_code=413)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body must be JSON"}, status_code=400)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("model"), str)
            or not isinstance(body.get("input"), dict)
        ):
            return JSONResponse({"detail": "expected {model: str, input: object}"}, status_code=422)
        if body["model"].split("/")[0] not in catalog.feature_labels():
            return JSONResponse({"detail": f"unknown model {body['model']!r}"}, status_code=422)
        key = request.headers.get("idempotency-key")
        fingerprint = hashlib.sha256(raw).hexdigest()
        if key and key in idempotency and idempotency[key][0] in predictions:
            pid, seen = idempotency[key]
            if seen != fingerprint:
                return JSONResponse(
                    {"detail": "this Idempotency-Key was used for a different request"},
                    status_code=422,
                )
            return JSONResponse({"id": pid, "status": "starting"}, status_code=201)
        inputs = body["input"]
        p = Prediction(
            id=secrets.token_hex(12), model=body["model"], input=inputs, created=time.monotonic()
        )
        if _contains_marker(inputs, FAIL_MARKER):
            p.fail_with = f"Failed on purpose ({FAIL_MARKER} marker in the prompt)."
        elif _contains_marker(inputs, REJECT_MARKER):
            p.reject = True
        elif failure_rate > 0 and rng.random() < failure_rate:
            p.fail_with = "The local renderer failed at random (WORKROOM_LOCAL_FAILURE_RATE)."
        if len(predictions) >= MAX_PREDICTIONS:
            oldest = next(iter(predictions))
            predictions.pop(oldest, None)
        predictions[p.id] = p
        if key:
            idempotency[key] = (p.id, fingerprint)
        return JSONResponse({"id": p.id, "status": "starting"}, status_code=201)

    async def get(request: Request) -> JSONResponse:
        p = predictions.get(request.path_params["pid"])
        if p is None:
            return JSONResponse({"detail": "prediction not found"}, status_code=404)
        return JSONResponse(await _view(p, request))

    async def cancel(request: Request) -> JSONResponse:
        p = predictions.get(request.path_params["pid"])
        if p is None:
            return JSONResponse({"detail": "prediction not found"}, status_code=404)
        if p.output is None:
            p.canceled = True
        return JSONResponse(await _view(p, request))

    async def output(request: Request) -> Response:
        p = predictions.get(request.path_params["pid"])
        raw = request.path_params.get("index", "1")
        index = int(raw) if raw.isdigit() and len(raw) < 4 else 0
        if p is None or p.output is None or not 1 <= index <= len(p.output):
            return JSONResponse({"detail": "no output"}, status_code=404)
        data, mime = p.output[index - 1]
        return Response(data, media_type=mime)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/predictions", create, methods=["POST"]),
            Route("/v1/predictions/{pid}", get),
            Route("/v1/predictions/{pid}/cancel", cancel, methods=["POST"]),
            Route("/v1/files/{pid}", output, name="output"),
            Route("/v1/files/{pid}/{index}", output, name="output_n"),
        ]
    )


class ServiceThread:
    """Runs the local service with uvicorn in a background thread (the worker and tests)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        **app_kwargs: Any,
    ) -> None:
        self.config = uvicorn.Config(
            create_app(**app_kwargs), host=host, port=port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(self.config)
        # `sock`: a socket this process already bound (providers.local.ensure_local_service), so
        # owning the port and serving on it cannot be split by another process starting too.
        target = self.server.run if sock is None else (lambda: self.server.run(sockets=[sock]))
        self.thread = threading.Thread(target=target, name="workroom-local-renderer", daemon=True)

    def start(self, timeout: float = 10.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local generation service did not start")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main(url: str | None = None) -> None:
    """Serve in the foreground (the `workroom local-renderer` command)."""
    parts = urlsplit(url or get_settings().local_provider_url)
    uvicorn.run(
        create_app(), host=parts.hostname or "127.0.0.1", port=parts.port or 3100, log_level="info"
    )
