"""Generation pipeline: how many jobs one worker process keeps in flight, and how soon a submitted
job is dispatched.

    python -m benchmarks.bench_pipeline                       # fast: 200 jobs of 10 s
    python -m benchmarks.bench_pipeline --jobs 1000 --seconds 30
    python -m benchmarks.bench_pipeline --postgres postgresql://postgres@127.0.0.1:5432/test

A stand-in hosted provider (in process, no HTTP: what is measured is the worker) takes `--seconds`
per job and reports progress in four steps, like a hosted API. JOBS accounts each submit one
1-credit image (the per-plan limit of jobs at once still applies per account); the real worker
(`run_worker`, woken by change notifications) runs them all at once. Reported: queued ->
dispatched p50/p95 (the job row's started_at - created_at), the worker process's CPU while all
jobs are in flight, and the time until all have succeeded. Prints a JSON line; --write puts the
figures into docs/benchmarks.md ("Generation pipeline (bench_pipeline)").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._common import (  # noqa: E402
    cpu_model,
    load_average,
    scratch_postgres,
    write_section,
)

HEADING = "## Generation pipeline (bench_pipeline)"
REQUEST = {
    "feature": "image",
    "model": "flux_schnell",
    "resolution": "1K",
    "count": "1",
    "prompt": "bench",
}


class StandInProvider:
    """Jobs that take `seconds` and report progress in four steps (no HTTP)."""

    name = "standin"

    def __init__(self, seconds: float) -> None:
        from PIL import Image

        self.seconds = seconds
        self.started: dict[str, float] = {}
        import io

        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (120, 40, 200)).save(buffer, "PNG")
        self.png = buffer.getvalue()
        self.status_calls = 0

    async def create(self, job) -> str:  # noqa: ANN001
        pid = f"standin-{job.id}"
        self.started[pid] = time.monotonic()
        return pid

    async def status(self, pid: str):
        from workroom_app.generation.providers import RUNNING, SUCCEEDED, ProviderStatus

        self.status_calls += 1
        done = (time.monotonic() - self.started[pid]) / self.seconds
        if done >= 1:
            return ProviderStatus(SUCCEEDED, 100, None)
        return ProviderStatus(RUNNING, int(done * 4) * 25, None)

    async def cancel(self, pid: str) -> None:
        self.started.pop(pid, None)

    async def fetch_output(self, pid: str) -> tuple[bytes, str]:
        return self.png, "image/png"

    async def aclose(self) -> None:
        pass


def prepare(url: str, n: int) -> list[int]:
    from sqlalchemy import select

    from workroom_app import db
    from workroom_app.billing import clock, ledger
    from workroom_app.db import write_session
    from workroom_app.models import Account
    from workroom_app.schema import upgrade

    engine = db.make_engine(url)
    upgrade(engine)
    with write_session(engine) as s:
        for i in range(n):
            s.add(
                Account(
                    email=f"pipe-{i}@example.com",
                    password_hash="x",
                    display_name=f"Pipe {i}",
                    role="user",
                    timezone="UTC",
                    created_at=clock.now(),
                )
            )
    with write_session(engine) as s:
        rows = s.exec(select(Account.id).where(Account.email.like("pipe-%"))).all()
        ids = [r if isinstance(r, int) else r[0] for r in rows]
        for account_id in ids:
            ledger.grant(
                s,
                account_id,
                100,
                action_type="staff_adjustment",
                source="staff",
                idempotency_key=f"pipe-{account_id}",
                reason="benchmark",
                actor_id=ids[0],
            )
    engine.dispose()
    return ids


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


async def run(url: str, ids: list[int], seconds: float, media_dir: Path) -> dict:
    from sqlalchemy import func, select

    from workroom_app import db
    from workroom_app.db import read_session, write_session
    from workroom_app.generation import jobs
    from workroom_app.generation.worker import run_worker
    from workroom_app.models import GenerationJob, JobStatus

    engine = db.get_engine(url)
    provider = StandInProvider(seconds)
    stop = asyncio.Event()
    worker = asyncio.ensure_future(
        run_worker(
            stop, engine=engine, provider=provider, billing_interval=0, start_local_service=False
        )
    )
    await asyncio.sleep(1.0)

    def submit(account_id: int) -> None:
        with write_session(engine) as s:
            jobs.submit(
                s,
                account_id,
                REQUEST,
                client_request_id=f"pipe-{account_id}",
                provider=provider.name,
            )

    def count(status: str) -> int:
        with read_session(engine) as s:
            row = s.exec(
                select(func.count())
                .select_from(GenerationJob)
                .where(GenerationJob.status == status)
            ).one()
            return row if isinstance(row, int) else row[0]

    t_submit = time.monotonic()
    for account_id in ids:  # one at a time, as users do: each commit notifies the worker
        await asyncio.to_thread(submit, account_id)
    submit_seconds = time.monotonic() - t_submit
    while await asyncio.to_thread(count, JobStatus.QUEUED):
        await asyncio.sleep(0.2)
    all_running = time.monotonic() - t_submit
    # CPU of this process (the worker; the submitter is idle now) while every job is in flight.
    window = max(1.0, min(10.0, seconds - all_running - 1.0))
    cpu0, t0 = time.process_time(), time.monotonic()
    in_flight = await asyncio.to_thread(count, JobStatus.RUNNING)
    calls0 = provider.status_calls
    await asyncio.sleep(window)
    cpu_pct = 100 * (time.process_time() - cpu0) / (time.monotonic() - t0)
    polls_per_s = (provider.status_calls - calls0) / (time.monotonic() - t0)
    while await asyncio.to_thread(count, JobStatus.SUCCEEDED) < len(ids):
        await asyncio.sleep(0.5)
    all_done = time.monotonic() - t_submit
    stop.set()
    await worker
    with read_session(engine) as s:
        rows = s.exec(select(GenerationJob.created_at, GenerationJob.started_at)).all()
    dispatch = [(b - a).total_seconds() * 1000 for a, b in rows if b is not None]
    db.dispose_engines()
    return {
        "jobs": len(ids),
        "job_seconds": seconds,
        "submit_seconds": round(submit_seconds, 1),
        "dispatch_p50_ms": round(statistics.median(dispatch), 1),
        "dispatch_p95_ms": round(pct(dispatch, 95), 1),
        "in_flight": in_flight,
        "worker_cpu_pct_in_flight": round(cpu_pct, 1),
        "status_polls_per_s": round(polls_per_s, 1),
        "all_running_s": round(all_running, 1),
        "all_done_s": round(all_done, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="how long each stand-in job takes"
    )
    parser.add_argument("--postgres", default="")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ["WORKROOM_WORKER_MAX_PARALLEL"] = str(args.jobs)
    os.environ["WORKROOM_MEDIA_DIR"] = str(run_dir / "media")
    from workroom_app import settings

    settings.get_settings.cache_clear()
    load_before = load_average()
    with contextlib.ExitStack() as stack:
        if args.postgres:
            url = stack.enter_context(scratch_postgres(args.postgres)).render_as_string(
                hide_password=False
            )
        else:
            url = f"sqlite:///{run_dir / 'pipe.db'}"

        os.environ["WORKROOM_DATABASE_URL"] = (
            url  # db.get_engine() (the clock, ...) uses the same database
        )
        settings.get_settings.cache_clear()
        ids = prepare(url, args.jobs)
        result = asyncio.run(run(url, ids, args.seconds, run_dir / "media"))
    result.update(
        {
            "database": "postgresql" if args.postgres else "sqlite",
            "load_before": round(load_before, 2),
            "load_after": round(load_average(), 2),
            "machine": f"{cpu_model()}, {os.cpu_count()} CPUs",
        }
    )
    line = (
        f"{result['jobs']} jobs of {result['job_seconds']:g} s on {result['database']}: queued → dispatched "
        f"p50 {result['dispatch_p50_ms']} ms, p95 {result['dispatch_p95_ms']} ms; {result['in_flight']} in flight "
        f"in one worker process at {result['worker_cpu_pct_in_flight']} % CPU "
        f"({result['status_polls_per_s']} status polls/s); all done after {result['all_done_s']} s "
        f"(submitting took {result['submit_seconds']} s). {result['machine']}, shared, load "
        f"{result['load_before']} → {result['load_after']}."
    )
    print(line)
    print(json.dumps({"bench": "pipeline", **result}, separators=(",", ":")))
    if args.write:
        write_section(HEADING, [f"- {line}"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
