"""POST /api/stripe/webhook: Stripe's deliveries come in here.

The body is read raw (bytes, never re-serialised) because the signature covers
the exact bytes Stripe sent. The work happens in billing/stripe_webhooks.py;
this only maps its outcome to a status code: 400 for a bad signature or a
malformed body (Stripe does not retry those), 200 once an event is stored and
processed or ignored (a duplicate included), 500 when processing failed and
Stripe should deliver it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workroom_app.billing.stripe_webhooks import WebhookProcessor

log = logging.getLogger("workroom.stripe")

WEBHOOK_PATH = "/api/stripe/webhook"
# Stripe's own events are a few KB; anything far bigger is not from Stripe. The cap is enforced
# while the body is read, chunked or not, by security/body_limit.py (413 past it); the checks
# below repeat it for an app mounted without that wrapper (tests).
MAX_BODY_BYTES = 1024 * 1024


@lru_cache(maxsize=1)
def _processor_from_settings() -> WebhookProcessor:
    return WebhookProcessor.from_settings()


def make_webhook_endpoint(
    processor_factory: Callable[[], WebhookProcessor] = _processor_from_settings,
):
    async def stripe_webhook(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse(
                {"error": "The body is too large for a Stripe event."}, status_code=413
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():  # counted as it arrives: a chunked body has no length
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return JSONResponse(
                    {"error": "The body is too large for a Stripe event."}, status_code=413
                )
            chunks.append(chunk)
        payload = b"".join(chunks)
        try:
            processor = processor_factory()
        except Exception:  # noqa: BLE001  (misconfiguration: tell Stripe to retry later)
            # The operator's log says what is missing; the public answer names no settings.
            log.warning("Stripe webhook refused: Stripe webhooks are not configured on this server")
            return JSONResponse(
                {"error": "Stripe webhooks are not enabled on this server."}, status_code=503
            )
        # The processor talks to Stripe and the database synchronously.
        outcome = await run_in_threadpool(
            processor.process, payload, request.headers.get("stripe-signature")
        )
        body = {"outcome": outcome.outcome, "event": outcome.event_id}
        if outcome.error:
            body["error"] = outcome.error
        return JSONResponse(body, status_code=outcome.status_code)

    return stripe_webhook


def stripe_routes(processor_factory: Callable[[], WebhookProcessor] | None = None) -> list[Route]:
    endpoint = make_webhook_endpoint(processor_factory or _processor_from_settings)
    return [Route(WEBHOOK_PATH, endpoint, methods=["POST"], name="stripe_webhook")]


STRIPE_ROUTES: list[Route] = stripe_routes()
