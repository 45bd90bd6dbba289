"""Work the Reflex backend runs beside the pages for as long as it is up.

`register_background(app)` (called once in workroom_app.py) registers the live push (one change
listener per process, see state/live.py) and a lifespan task that runs the generation worker loop
(restarted if it dies; /api/health reports it), which also starts the local generation service when the local
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
from collections.abc import Awaitable, Callable

import reflex as rx

from workroom_app.generation.worker import run_worker
from workroom_app.state import live

log = logging.getLogger("workroom.background")

STOP_TIMEOUT = 10.0


def worker_enabled() -> bool:
    return os.environ.get("WORKROOM_RUN_WORKER", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


# A worker that crashes is started again after these many seconds (then the longest, repeated).
RESTART_BACKOFF = (1.0, 2.0, 5.0, 15.0, 30.0)

# What /api/health reports about the in-process worker ("not started" when it does not run here).
worker_status: dict[str, object] = {"state": "not started", "restarts": 0, "error": None}


async def supervise_worker(
    stop: asyncio.Event, run: Callable[[asyncio.Event], Awaitable[None]] = run_worker
) -> None:
    """Run the worker until `stop`; if it dies, log it, mark the app degraded, start it again."""
    attempt = 0
    while not stop.is_set():
        worker_status.update(state="running")
        try:
            await run(stop)
            if stop.is_set():
                break
            raise RuntimeError("the worker loop returned")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  (any failure: report, then restart)
            log.exception("generation worker died; restarting it")
            worker_status.update(
                state="restarting",
                error=f"{exc.__class__.__name__}: {exc}"[:300],
                restarts=int(worker_status["restarts"]) + 1,
            )
        delay = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
        attempt += 1
        with contextlib.suppress(TimeoutError):  # the back-off ended: run it again
            await asyncio.wait_for(stop.wait(), timeout=delay)
    worker_status.update(state="stopped")


@contextlib.asynccontextmanager
async def generation_worker():
    """Lifespan: start the (supervised) worker loop; on shutdown let it release its jobs' leases."""
    stop = asyncio.Event()
    task = asyncio.create_task(supervise_worker(stop), name="workroom-generation-worker")
    log.info("generation worker started in the app process")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=STOP_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception:  # noqa: BLE001 - shutting down: log whatever it was, do not raise
            log.exception("generation worker stopped with an error")


def register_background(app: rx.App) -> None:
    """Wire the live push to the app and, unless WORKROOM_RUN_WORKER=0, start the worker with it."""
    live.set_app(app)
    app.register_lifespan_task(live.live_push)
    if worker_enabled():
        app.register_lifespan_task(generation_worker)
