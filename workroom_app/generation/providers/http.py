"""Client for the common hosted-model "prediction" API over httpx:

    POST /v1/predictions {model, input}           -> {id, status}
    GET  /v1/predictions/{id}                     -> {id, status, progress?, output, error}
         status: starting | processing | succeeded | failed | canceled
    POST /v1/predictions/{id}/cancel
    GET  <output url>                             -> the file

Timeouts on every call; retries with exponential backoff on timeouts, connection
errors, 429 and 5xx; clear ProviderErrors for 4xx and malformed bodies. The
create call carries an Idempotency-Key (the job id), so a retry after a lost
answer does not start a second prediction on services that honour it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from workroom_app.generation import jobs, uploads
from workroom_app.generation.providers import (
    CANCELED,
    FAILED,
    QUEUED,
    REJECTED,
    RUNNING,
    SUCCEEDED,
    ProviderError,
    ProviderStatus,
)
from workroom_app.models import GenerationJob

_STATES = {
    "starting": QUEUED,
    "queued": QUEUED,
    "processing": RUNNING,
    "running": RUNNING,
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "canceled": CANCELED,
    "cancelled": CANCELED,
}
# Hosted APIs report a safety refusal as a failure; we show it as "rejected".
_REJECTION_RE = re.compile(r"\b(nsfw|safety|content policy|moderation|rejected)\b", re.I)
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_OUTPUT_BYTES = 200 * 1024 * 1024
# Files one job may return (N images: N files); more is a broken answer, not a bigger job.
MAX_OUTPUTS = 16


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class PredictionClient:
    name = "http"

    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        transport: httpx.AsyncBaseTransport | None = None,
        media_dir: Path | None = None,
    ) -> None:
        if not base_url:
            raise ValueError("The generation provider URL is not configured.")
        self.base_url = base_url.rstrip("/") + "/"
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.media_dir = media_dir
        headers = {"Accept": "application/json", "User-Agent": "workroom-generation/1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._token_origin = urlsplit(self.base_url)[:2]
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )
        # Output files often live on another host (a CDN): they are fetched
        # without our headers, so the API token stays with the API.
        self._plain = httpx.AsyncClient(timeout=httpx.Timeout(timeout), transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._plain.aclose()

    async def __aenter__(self) -> PredictionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------- transport

    async def _request(
        self, method: str, url: str, *, client: httpx.AsyncClient | None = None, **kwargs: Any
    ) -> httpx.Response:
        client = client or self._client
        last: ProviderError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            try:
                response = await client.request(method, url, **kwargs)
            except httpx.TimeoutException:
                last = ProviderError(
                    "The generation service did not answer in time.", retriable=True
                )
                continue
            except httpx.TransportError as exc:
                last = ProviderError(
                    f"The generation service cannot be reached ({exc.__class__.__name__}).",
                    retriable=True,
                )
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = ProviderError(
                    f"The generation service is having trouble (HTTP {response.status_code}).",
                    retriable=True,
                    status_code=response.status_code,
                )
                continue
            if response.status_code >= 400:
                raise ProviderError(
                    f"The generation service refused the request (HTTP {response.status_code}): "
                    f"{_short(_error_text(response))}",
                    status_code=response.status_code,
                )
            return response
        assert last is not None
        raise last

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise ProviderError(
                f"The generation service sent a malformed answer (not JSON): {_short(response.text, 80)!r}"
            ) from None
        if not isinstance(body, dict):
            raise ProviderError(
                "The generation service sent a malformed answer (not a JSON object)."
            )
        return body

    # ------------------------------------------------------------- API

    def model_name(self, job: GenerationJob) -> str:
        return f"{job.feature}/{job.model}"

    def build_input(self, job: GenerationJob) -> dict[str, Any]:
        """The prediction input: the job's parameters, uploads inlined as data URIs."""
        params = jobs.params(job)
        refs = params.pop("uploads", {}) or {}
        for role, ref in refs.items():
            data = uploads.path_of(job.account_id, ref, self.media_dir).read_bytes()
            params[role] = f"data:{uploads.mime_of(ref)};base64,{base64.b64encode(data).decode()}"
        return params

    async def create(self, job: GenerationJob) -> str:
        response = await self._request(
            "POST",
            "v1/predictions",
            json={"model": self.model_name(job), "input": self.build_input(job)},
            # Unique across databases too (job ids restart in a fresh one).
            headers={
                "Idempotency-Key": f"workroom-{job.account_id}-{job.id}-{job.client_request_id}"
            },
        )
        body = self._json(response)
        pid = body.get("id")
        if not isinstance(pid, str) or not _ID_RE.match(pid):
            raise ProviderError(
                "The generation service sent a malformed answer (no prediction id)."
            )
        if body.get("status") is not None and body.get("status") not in _STATES:
            raise ProviderError(
                f"The generation service sent an unknown status {body.get('status')!r}."
            )
        return pid

    async def _prediction(self, provider_job_id: str) -> dict[str, Any]:
        if not _ID_RE.match(provider_job_id or ""):
            raise ProviderError("The prediction id is not valid.")
        try:
            response = await self._request("GET", f"v1/predictions/{provider_job_id}")
        except ProviderError as exc:
            if exc.status_code == 404:
                raise ProviderError(
                    "The generation service no longer knows this job.", status_code=404
                ) from None
            raise
        return self._json(response)

    async def status(self, provider_job_id: str) -> ProviderStatus:
        body = await self._prediction(provider_job_id)
        raw = body.get("status")
        if raw not in _STATES:
            raise ProviderError(f"The generation service sent an unknown status {raw!r}.")
        state = _STATES[raw]
        progress = _progress(body.get("progress"), state)
        error = body.get("error")
        if error is not None and not isinstance(error, str):
            error = json.dumps(error)[:500]
        if state == FAILED:
            error = error or "The generation service reported a failure without details."
            if _REJECTION_RE.search(error):
                state = REJECTED
        if state == SUCCEEDED and _output_url(body) is None:
            raise ProviderError("The generation service reported success but sent no output URL.")
        return ProviderStatus(state, progress, error)

    async def cancel(self, provider_job_id: str) -> None:
        if not _ID_RE.match(provider_job_id or ""):
            raise ProviderError("The prediction id is not valid.")
        await self._request("POST", f"v1/predictions/{provider_job_id}/cancel")

    async def fetch_output(self, provider_job_id: str) -> tuple[bytes, str]:
        """The first (usually the only) output file."""
        return (await self.fetch_outputs(provider_job_id, limit=1))[0]

    async def fetch_outputs(
        self, provider_job_id: str, *, limit: int = MAX_OUTPUTS
    ) -> list[tuple[bytes, str]]:
        """Every output file, in order (an image job with count 3 answers with 3 URLs)."""
        body = await self._prediction(provider_job_id)
        urls = _output_urls(body)
        if not urls:
            raise ProviderError("The generation service sent no output URL.")
        if len(urls) > MAX_OUTPUTS:
            raise ProviderError(
                "The generation service sent more output files than a job can have."
            )
        return [await self._fetch_file(url) for url in urls[:limit]]

    async def _fetch_file(self, url: str) -> tuple[bytes, str]:
        absolute = urljoin(self.base_url, url)
        if urlsplit(absolute).scheme not in ("http", "https"):
            raise ProviderError("The generation service sent an output URL that is not http(s).")
        same_origin = urlsplit(absolute)[:2] == self._token_origin
        response = await self._request("GET", absolute, client=None if same_origin else self._plain)
        data = response.content
        if not data:
            raise ProviderError("The generation service sent an empty output file.")
        if len(data) > MAX_OUTPUT_BYTES:
            raise ProviderError("The generation service sent an output file that is too large.")
        mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not mime or mime == "application/octet-stream":
            ext = uploads.sniff(data)
            mime = uploads.FORMATS[ext][1] if ext else "application/octet-stream"
        return data, mime


def _output_url(body: dict[str, Any]) -> str | None:
    urls = _output_urls(body)
    return urls[0] if urls else None


def _output_urls(body: dict[str, Any]) -> list[str]:
    """The output URLs: `output` is a URL, {url: ...}, or a list of either."""
    out = body.get("output")
    items = out if isinstance(out, list) else [out]
    urls = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("url")
        if not isinstance(item, str) or not item:
            return []  # one malformed entry makes the whole answer malformed
        urls.append(item)
    return urls


def _progress(value: Any, state: str) -> int:
    if state == SUCCEEDED:
        return 100
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    # A float up to 1 is a fraction (0.42); an int is a percentage (42).
    if isinstance(value, float) and value <= 1.0:
        value = value * 100
    return max(0, min(100, int(value)))


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            for key in ("detail", "error", "message"):
                text = body.get(key)
                if isinstance(text, str):
                    return text
    except ValueError:
        pass
    return response.text or response.reason_phrase
