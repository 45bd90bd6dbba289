"""The local provider: the generation service that ships with the app
(generation/local_service.py), reached over HTTP like a hosted API."""

from __future__ import annotations

import errno
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from workroom_app.generation.local_service import ServiceThread
from workroom_app.generation.providers.http import PredictionClient
from workroom_app.settings import Settings


class LocalProvider(PredictionClient):
    name = "local"

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> LocalProvider:
        # Rendering a large image or a GIF takes a few seconds on a small machine.
        kwargs.setdefault("timeout", 60.0)
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("media_dir", settings.media_dir)
        return cls(settings.local_provider_url, **kwargs)


def is_reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
        return (
            response.status_code == 200
            and response.json().get("service") == "workroom-local-renderer"
        )
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def ensure_local_service(url: str, *, wait_for_other: float = 15.0) -> ServiceThread | None:
    """Start the local service in this process when nothing answers at `url`.
    Returns the ServiceThread started (stop it on exit), or None if one was running.

    Several processes (web workers, `workroom worker`) may call this at once: the port goes to
    whoever binds it first, and the others use that one's service. A port held by something
    that never answers as the renderer raises, so a worker never runs without one silently."""
    if is_reachable(url):
        return None
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"The local generation service at {url} does not answer.")
    port = parts.port or 3100
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise
        # Another process owns the port: it is starting its renderer; use that one.
        deadline = time.monotonic() + wait_for_other
        while time.monotonic() < deadline:
            if is_reachable(url):
                return None
            time.sleep(0.2)
        raise RuntimeError(
            f"Port {port} is in use by something that is not the Workroom renderer "
            f"(set WORKROOM_LOCAL_PROVIDER_URL to a free port)."
        ) from exc
    sock.listen(2048)
    sock.setblocking(False)
    service = ServiceThread(host="127.0.0.1", port=port, sock=sock)
    service.start()
    return service
