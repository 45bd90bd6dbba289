"""Work the Reflex backend runs beside the pages for as long as it is up.

`register_background(app)` (called once in workroom_app.py) registers a lifespan task that runs
the generation worker loop, which also starts the local generation service when the local
provider is selected and nothing answers at settings.local_provider_url. Jobs are durable rows
claimed with a conditional UPDATE and a lease, so several backend processes each running a worker
(or a separate `workroom worker`) never run one job twice.

WORKROOM_RUN_WORKER=0 turns it off (tests that drive jobs themselves, or a deployment that runs
`workroom worker` as its own process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

log = logging.getLogger("workroom.background")

STOP_TIMEOUT = 10.0


def worker_enabled() -> bool:
    return os.environ.get("WORKROOM_RUN_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.asynccontextmanager
async def generation_worker():
    """Lifespan: start the worker loop; on shutdown let it release its jobs' leases."""
    from workroom_app.generation.worker import run_worker

    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(stop), name="workroom-generation-worker")
    log.info("generation worker started in the app process")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=STOP_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception:
            log.exception("generation worker stopped with an error")


def register_background(app) -> None:
    """Wire the live push to the app and, unless WORKROOM_RUN_WORKER=0, start the worker with it."""
    from workroom_app.state import live

    live.set_app(app)
    if worker_enabled():
        app.register_lifespan_task(generation_worker)
