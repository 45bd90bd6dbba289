"""Generation providers: where a job is actually rendered.

Both providers speak the common hosted "prediction" HTTP shape (see
providers/http.py); `local` is the service that ships with the app
(generation/local_service.py), `hosted` is a real model API.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from workroom_app.models import GenerationJob
from workroom_app.settings import Settings, get_settings

# Normalised provider states.
QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
REJECTED = "rejected"
CANCELED = "canceled"


class ProviderStatus(NamedTuple):
    state: str  # one of the constants above
    progress: int  # 0-100
    error: str | None


class ProviderError(Exception):
    """A provider call did not work. ``retriable``: the same call may work later
    (outage, timeout, 5xx); otherwise the job cannot go on (bad request, lost job,
    malformed answer)."""

    def __init__(self, message: str, *, retriable: bool = False, status_code: int | None = None):
        super().__init__(message)
        self.retriable = retriable
        self.status_code = status_code


class Provider(Protocol):
    name: str

    async def create(self, job: GenerationJob) -> str: ...

    async def status(self, provider_job_id: str) -> ProviderStatus: ...

    async def cancel(self, provider_job_id: str) -> None: ...

    async def fetch_output(self, provider_job_id: str) -> tuple[bytes, str]: ...

    # Every output file in order (N images: N files). Providers without it return one file.
    async def fetch_outputs(self, provider_job_id: str) -> list[tuple[bytes, str]]: ...

    async def aclose(self) -> None: ...


def get_provider(name: str | None = None, settings: Settings | None = None) -> Provider:
    """The provider named by settings.generation_provider (or `name`)."""
    settings = settings or get_settings()
    name = name or settings.generation_provider
    if name == "local":
        # The providers import this package's types: loaded here, not at the top (a cycle).
        from workroom_app.generation.providers.local import LocalProvider  # noqa: PLC0415

        return LocalProvider.from_settings(settings)
    if name == "hosted":
        from workroom_app.generation.providers.hosted import HostedProvider  # noqa: PLC0415

        return HostedProvider.from_settings(settings)
    raise ValueError(f"Unknown generation provider {name!r}: use 'local' or 'hosted'.")
