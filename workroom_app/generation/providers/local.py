"""The local provider: the generation service that ships with the app
(generation/local_service.py), reached over HTTP like a hosted API."""

from __future__ import annotations

import httpx

from workroom_app.generation.providers.http import PredictionClient


class LocalProvider(PredictionClient):
    name = "local"

    @classmethod
    def from_settings(cls, settings, **kwargs) -> LocalProvider:
        # Rendering a large image or a GIF takes a few seconds on a small machine.
        kwargs.setdefault("timeout", 60.0)
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("media_dir", settings.media_dir)
        return cls(settings.local_provider_url, **kwargs)


def is_reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
        return response.status_code == 200 and response.json().get("service") == "workroom-local-renderer"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def ensure_local_service(url: str):
    """Start the local service in this process when nothing answers at `url`.
    Returns the ServiceThread started (stop it on exit), or None if one was running."""
    from urllib.parse import urlsplit

    from workroom_app.generation.local_service import ServiceThread

    if is_reachable(url):
        return None
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"The local generation service at {url} does not answer.")
    service = ServiceThread(host="127.0.0.1", port=parts.port or 3100)
    service.start()
    return service
