"""POST /api/stripe/webhook: Stripe's deliveries come in here.

The body is read raw (bytes, never re-serialised) because the signature covers
the exact bytes Stripe sent. The work happens in billing/stripe_webhooks.py;
this only maps its outcome to a status code: 400 for a bad signature or a
malformed body (Stripe does not retry those), 200 once an event is stored and
processed or ignored (a duplicate included), 500 when processing failed and
Stripe should deliver it again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workroom_app.billing.stripe_webhooks import WebhookProcessor

WEBHOOK_PATH = "/api/stripe/webhook"
# Stripe's own events are a few KB; anything far bigger is not from Stripe.
MAX_BODY_BYTES = 512 * 1024


@lru_cache(maxsize=1)
def _processor_from_settings() -> WebhookProcessor:
    return WebhookProcessor.from_settings()


def make_webhook_endpoint(processor_factory: Callable[[], WebhookProcessor] = _processor_from_settings):
    async def stripe_webhook(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"error": "The body is too large for a Stripe event."}, status_code=400)
        payload = await request.body()
        if len(payload) > MAX_BODY_BYTES:
            return JSONResponse({"error": "The body is too large for a Stripe event."}, status_code=400)
        try:
            processor = processor_factory()
        except Exception as exc:  # noqa: BLE001  (misconfiguration: tell Stripe to retry later)
            return JSONResponse({"error": f"Stripe webhooks are not configured: {exc}"}, status_code=503)
        # The processor talks to Stripe and the database synchronously.
        outcome = await run_in_threadpool(processor.process, payload, request.headers.get("stripe-signature"))
        body = {"outcome": outcome.outcome, "event": outcome.event_id}
        if outcome.error:
            body["error"] = outcome.error
        return JSONResponse(body, status_code=outcome.status_code)

    return stripe_webhook


def stripe_routes(processor_factory: Callable[[], WebhookProcessor] | None = None) -> list[Route]:
    endpoint = make_webhook_endpoint(processor_factory or _processor_from_settings)
    return [Route(WEBHOOK_PATH, endpoint, methods=["POST"], name="stripe_webhook")]


STRIPE_ROUTES: list[Route] = stripe_routes()
