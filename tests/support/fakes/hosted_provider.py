"""A local stand-in for a hosted model API of the common prediction shape, for
testing the hosted client: it checks the Bearer token, records requests, and
can be told to answer with errors, slowly, or with malformed bodies.

    api = FakeHostedAPI(token="t0k")
    with api.serve() as url:          # Starlette + uvicorn on 127.0.0.1:<free port>
        api.script("POST /v1/predictions", [500, 500])   # next two creates fail with 500
        ...
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections import defaultdict, deque
from contextlib import contextmanager
from typing import Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def tiny_png(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


class ServerThread:
    """Serve a Starlette app with uvicorn on a free 127.0.0.1 port in a thread."""

    def __init__(self, app) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("stand-in server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class FakeHostedAPI:
    """Behaviour knobs:
    - script(route, answers): per route ("POST /v1/predictions", "GET /v1/predictions/{id}",
      "POST /v1/predictions/{id}/cancel", "GET /files/{id}") a queue of answers used one per
      request before the normal behaviour: an int status code (error JSON), "slow:<seconds>"
      (sleep, then answer normally), "malformed" (HTML body), or a dict (sent as the JSON body).
    - polls_to_finish: GET polls before a prediction succeeds.
    - outcome: "succeeded" or "failed"; error: the failure text.
    - output_bytes / output_mime: the file; output_base: another origin for output URLs.
    """

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.requests: list[dict[str, Any]] = []
        self.scripts: dict[str, deque] = defaultdict(deque)
        self.predictions: dict[str, dict[str, Any]] = {}
        self.polls_to_finish = 2
        self.outcome = "succeeded"
        self.error = "model crashed"
        self.output_bytes = tiny_png()
        self.output_mime = "image/png"
        self.output_base: str | None = None
        self._n = 0
        self.app = Starlette(
            routes=[
                Route("/v1/predictions", self._create, methods=["POST"]),
                Route("/v1/predictions/{pid}", self._get),
                Route("/v1/predictions/{pid}/cancel", self._cancel, methods=["POST"]),
                Route("/files/{pid}", self._file),
            ]
        )

    def script(self, route: str, answers: list) -> None:
        self.scripts[route].extend(answers)

    @contextmanager
    def serve(self):
        with ServerThread(self.app) as url:
            self.url = url
            yield url

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if r["path"].startswith(path_prefix) and (method is None or r["method"] == method)
        ]

    async def _scripted(self, route: str) -> Response | None:
        queue = self.scripts.get(route)
        if not queue:
            return None
        answer = queue.popleft()
        if isinstance(answer, int):
            return JSONResponse({"detail": f"scripted error {answer}"}, status_code=answer)
        if isinstance(answer, str) and answer.startswith("slow:"):
            await asyncio.sleep(float(answer[5:]))
            return None
        if answer == "malformed":
            return PlainTextResponse(
                "<html>502 Bad Gateway</html>", status_code=200, media_type="text/html"
            )
        if isinstance(answer, dict):
            return JSONResponse(answer)
        raise ValueError(f"unknown scripted answer {answer!r}")

    def _record(self, request: Request, body: Any = None) -> None:
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "authorization": request.headers.get("authorization"),
                "idempotency_key": request.headers.get("idempotency-key"),
                "body": body,
            }
        )

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    async def _create(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self._record(request, body)
        if not self._authorised(request):
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        scripted = await self._scripted("POST /v1/predictions")
        if scripted is not None:
            return scripted
        if (
            not isinstance(body, dict)
            or "model" not in body
            or not isinstance(body.get("input"), dict)
        ):
            return JSONResponse({"detail": "model and input are required"}, status_code=422)
        self._n += 1
        pid = f"pred{self._n}"
        self.predictions[pid] = {"polls": 0, "status": "starting", "canceled": False, "body": body}
        return JSONResponse({"id": pid, "status": "starting"}, status_code=201)

    async def _get(self, request: Request) -> Response:
        self._record(request)
        if not self._authorised(request):
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        scripted = await self._scripted("GET /v1/predictions/{id}")
        if scripted is not None:
            return scripted
        pid = request.path_params["pid"]
        p = self.predictions.get(pid)
        if p is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        if p["canceled"]:
            return JSONResponse({"id": pid, "status": "canceled", "output": None, "error": None})
        p["polls"] += 1
        if p["polls"] < self.polls_to_finish:
            return JSONResponse(
                {
                    "id": pid,
                    "status": "processing",
                    "progress": p["polls"] / self.polls_to_finish,
                    "output": None,
                    "error": None,
                }
            )
        if self.outcome == "failed":
            return JSONResponse(
                {"id": pid, "status": "failed", "output": None, "error": self.error}
            )
        base = self.output_base or self.url
        return JSONResponse(
            {"id": pid, "status": "succeeded", "output": [f"{base}/files/{pid}"], "error": None}
        )

    async def _cancel(self, request: Request) -> Response:
        self._record(request)
        if not self._authorised(request):
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        scripted = await self._scripted("POST /v1/predictions/{id}/cancel")
        if scripted is not None:
            return scripted
        p = self.predictions.get(request.path_params["pid"])
        if p is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        p["canceled"] = True
        return JSONResponse({"id": request.path_params["pid"], "status": "canceled"})

    async def _file(self, request: Request) -> Response:
        self._record(request)
        scripted = await self._scripted("GET /files/{id}")
        if scripted is not None:
            return scripted
        return Response(self.output_bytes, media_type=self.output_mime)
