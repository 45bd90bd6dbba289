"""A hosted model API (the common prediction shape), configured by
WORKROOM_HOSTED_PROVIDER_URL and WORKROOM_HOSTED_PROVIDER_TOKEN (sent as Bearer)."""

from __future__ import annotations

from typing import Any

from workroom_app.generation.providers.http import PredictionClient
from workroom_app.settings import Settings


class HostedProvider(PredictionClient):
    name = "hosted"

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> HostedProvider:
        if not settings.hosted_provider_url:
            raise ValueError(
                "WORKROOM_HOSTED_PROVIDER_URL is not set: configure the hosted API or use "
                "WORKROOM_GENERATION_PROVIDER=local."
            )
        if not settings.hosted_provider_token:
            raise ValueError("WORKROOM_HOSTED_PROVIDER_TOKEN is not set for the hosted provider.")
        kwargs.setdefault("timeout", settings.hosted_provider_timeout)
        kwargs.setdefault("retries", settings.hosted_provider_retries)
        kwargs.setdefault("media_dir", settings.media_dir)
        return cls(settings.hosted_provider_url, token=settings.hosted_provider_token, **kwargs)
