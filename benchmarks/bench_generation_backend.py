"""Generation back end: the server part of "click on
Generate to the new balance" and what the local renderer costs.

1. submit(): one write transaction (lock account, price, count running jobs,
   debit, job row) plus reading the new balance, as the page state does it;
   p50/p95 on SQLite and PostgreSQL.
2. The local renderer per feature (the largest requests the catalog allows).
3. One job through the real worker and local service over HTTP with no
   artificial render delay: submit -> succeeded.

Run:  WORKROOM_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \
      .venv/bin/python benchmarks/bench_generation_backend.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from benchmarks._common import scratch_postgres  # noqa: E402
from workroom_app import db  # noqa: E402
from workroom_app.billing import ledger  # noqa: E402
from workroom_app.db import read_session, write_session  # noqa: E402
from workroom_app.generation import jobs, renderers  # noqa: E402
from workroom_app.models import Account, ActionType, GrantSource  # noqa: E402
from workroom_app.schema import upgrade  # noqa: E402

REQUEST = {
    "feature": "video",
    "model": "kling21",
    "resolution": "720p",
    "duration": 5,
    "prompt": "bench",
}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _account(engine) -> int:
    from workroom_app.billing import clock

    with write_session(engine) as s:
        acct = Account(
            email=f"{uuid.uuid4().hex[:8]}@bench.test", password_hash="x", created_at=clock.now()
        )
        s.add(acct)
        s.flush()
        ledger.open_account(s, acct.id)
        ledger.grant(
            s,
            acct.id,
            10_000_000,
            action_type=ActionType.TRIAL_GRANT,
            source=GrantSource.TRIAL,
            idempotency_key=f"bench:{acct.id}",
        )
        return acct.id


def bench_submit(engine, runs: int) -> tuple[float, float]:
    acct = _account(engine)
    times = []
    for i in range(runs):
        started = time.perf_counter()
        with write_session(engine) as s:
            job = jobs.submit(s, acct, REQUEST, client_request_id=f"b{i}")
        with read_session(engine) as s:
            ledger.balance(s, acct)
        times.append((time.perf_counter() - started) * 1000)
        with write_session(engine) as s:  # free the Free plan's single slot (not timed)
            jobs.cancel(s, acct, job.id)
    return pct(times, 50), pct(times, 95)


def bench_renderers() -> list[tuple[str, float, int]]:
    cases = [
        (
            "image 1K x1",
            lambda: renderers.render_image("a lighthouse at dusk", "1K", 1, "flux_pro"),
        ),
        (
            "image 4K x4",
            lambda: renderers.render_image("a lighthouse at dusk", "4K", 4, "gpt_image"),
        ),
        (
            "video 10 s 1080p (MP4 preview size)",
            lambda: renderers.render_video("waves", "1080p", 10, "veo3"),
        ),
        (
            "voiceover 5,000 chars",
            lambda: renderers.render_voiceover("Workroom reads this. " * 238, "standard"),
        ),
        ("lip sync 60 s", lambda: renderers.render_lip_sync({}, "1080p", 60)),
    ]
    out = []
    for name, fn in cases:
        started = time.perf_counter()
        files = fn()  # a list of (bytes, mime): N images are N files
        out.append(
            (name, (time.perf_counter() - started) * 1000, sum(len(data) for data, _mime in files))
        )
    return out


def bench_end_to_end(engine, media: Path) -> float:
    from workroom_app.generation.local_service import ServiceThread
    from workroom_app.generation.providers.local import LocalProvider
    from workroom_app.generation.worker import Worker

    service = ServiceThread(port=0, render_seconds=0)
    url = service.start()
    acct = _account(engine)
    try:

        async def go():
            provider = LocalProvider(url, media_dir=media)
            worker = Worker(
                engine, provider, worker_id="bench", poll_interval=0.01, media_dir=media
            )
            started = time.perf_counter()
            with write_session(engine) as s:
                jobs.submit(
                    s,
                    acct,
                    {
                        "feature": "image",
                        "model": "flux_schnell",
                        "resolution": "1K",
                        "count": 1,
                        "prompt": "bench",
                    },
                    client_request_id="e2e",
                )
            await worker.run_once()
            await worker.wait_idle()
            await provider.aclose()
            return (time.perf_counter() - started) * 1000

        return asyncio.run(go())
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as scratch:
        engines = {"SQLite": db.make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")}
        pg_url = os.environ.get("WORKROOM_TEST_POSTGRES_URL")
        if pg_url:
            pg = scratch.enter_context(scratch_postgres(pg_url))
            engines["PostgreSQL"] = db.make_engine(pg.render_as_string(hide_password=False))
        try:
            for label, engine in engines.items():
                upgrade(engine)
                p50, p95 = bench_submit(engine, args.runs)
                print(
                    f"submit + balance read, {label}: p50 {p50:.2f} ms, p95 {p95:.2f} ms ({args.runs} runs)"
                )
            for name_, ms, size in bench_renderers():
                print(f"local renderer, {name_}: {ms:.0f} ms, {size / 1024:.0f} KB")
            ms = bench_end_to_end(engines["SQLite"], Path(tmp) / "media")
            print(
                f"one image job through worker + local service (no render delay), SQLite: {ms:.0f} ms"
            )
        finally:
            # Before the scratch database is dropped on leaving the ExitStack.
            for engine in engines.values():
                engine.dispose()


if __name__ == "__main__":
    main()
