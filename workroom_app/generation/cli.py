"""`workroom worker` and `workroom local-renderer`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from workroom_app.settings import get_settings


def _cmd_worker(args: argparse.Namespace) -> int:
    # Loaded by the command, not at the top: `workroom --help` and the other commands start
    # without the worker, its providers and their HTTP clients.
    from workroom_app.generation.worker import Worker, run_worker  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # One line per poll request would drown the job messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> None:
        if args.once:
            # One pass and wait for the jobs it started (demos, cron, debugging).
            from workroom_app.generation.providers.local import (  # noqa: PLC0415 - as above
                ensure_local_service,
            )

            settings = get_settings()
            service = None
            if settings.generation_provider == "local":
                service = await asyncio.to_thread(ensure_local_service, settings.local_provider_url)
            worker = Worker(poll_interval=args.poll_interval)
            try:
                started = await worker.run_once()
                await worker.wait_idle()
                print(f"ran {len(started)} job(s)")
            finally:
                await worker.provider.aclose()
                if service is not None:
                    await asyncio.to_thread(service.stop)
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(stop, args.poll_interval)

    asyncio.run(main())
    return 0


def _cmd_local_renderer(args: argparse.Namespace) -> int:
    # As above: the renderer's web stack loads only for this command.
    from workroom_app.generation.local_service import main  # noqa: PLC0415

    main(args.url)
    return 0


def add_worker_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run generation jobs (starts the local renderer if needed)")
    p.add_argument("--poll-interval", type=float, default=None, help="seconds between passes")
    p.add_argument("--once", action="store_true", help="one pass, wait for its jobs, exit")
    p.set_defaults(func=_cmd_worker)
    r = sub.add_parser(
        "local-renderer", help="serve the local generation service in the foreground"
    )
    r.add_argument("--url", default=None, help="defaults to WORKROOM_LOCAL_PROVIDER_URL")
    r.set_defaults(func=_cmd_local_renderer)
