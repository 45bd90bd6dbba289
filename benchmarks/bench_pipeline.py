"""Generation pipeline: how many jobs one worker process keeps in flight, and how soon a submitted
job is dispatched.

    python -m benchmarks.bench_pipeline                       # fast: 200 jobs of 10 s
    python -m benchmarks.bench_pipeline --jobs 1000 --seconds 30
    python -m benchmarks.bench_pipeline --postgres postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.bench_pipeline --renderer --jobs 300 --seconds 0.3

A stand-in hosted provider (in process, no HTTP: what is measured is the worker) takes `--seconds`
per job and reports progress in four steps, like a hosted API. JOBS accounts each submit one
1-credit image (the per-plan limit of jobs at once still applies per account); the real worker
(`run_worker`, woken by change notifications) runs them all at once. Reported: queued ->
dispatched p50/p95 (the job row's started_at - created_at), the worker process's CPU while all
jobs are in flight, and the time until all have succeeded. Prints a JSON line; --write puts the
figures into docs/benchmarks.md ("Generation pipeline (bench_pipeline)").

--renderer uses the real local renderer instead (`workroom local-renderer` in its own process,
drawing each image at its full size, over HTTP with the real provider client; `--seconds` is its
WORKROOM_LOCAL_RENDER_SECONDS) and reports jobs per second with the CPU of the renderer and of
the worker over the whole run: with as many slots as jobs, the rate is bounded by the renderer's
drawing when the renderer's process is the one using a whole core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
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


def submit_all(url: str, account_ids: list[int], provider_name: str) -> None:
    """Each account submits its job, one commit at a time (in a submitter process, or in a thread
    of the worker's process: then on the worker's own engine, whose SQLite writer lock queues
    the two sides as `make run` does, instead of SQLite's sleeping busy handler)."""
    from workroom_app import db
    from workroom_app.db import write_session
    from workroom_app.generation import jobs

    engine = db.get_engine(url)
    for account_id in account_ids:
        with write_session(engine) as s:
            jobs.submit(
                s,
                account_id,
                REQUEST,
                client_request_id=f"pipe-{account_id}",
                provider=provider_name,
            )


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


@contextlib.contextmanager
def local_renderer(run_dir: Path, seconds: float):  # noqa: ANN201
    """`workroom local-renderer` in its own process on a free port; yields (its psutil process,
    its URL)."""
    import socket
    import subprocess

    import psutil

    from workroom_app.generation.providers.local import is_reachable

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "WORKROOM_LOCAL_RENDER_SECONDS": str(seconds)}
    with open(run_dir / "renderer.log", "wb") as log:
        proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "workroom"), "local-renderer", "--url", url],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not is_reachable(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local renderer did not start: see {run_dir}")
            time.sleep(0.2)
        yield psutil.Process(proc.pid), url
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_seconds(process) -> float:  # noqa: ANN001
    times = process.cpu_times()
    return times.user + times.system


async def run(
    url: str,
    ids: list[int],
    seconds: float,
    media_dir: Path,
    *,
    submitters: int = 8,
    window_max: float = 10.0,
    renderer=None,  # noqa: ANN001  (psutil process of a separate local renderer, or None)
) -> dict:
    from sqlalchemy import func, select

    from workroom_app import db
    from workroom_app.db import read_session
    from workroom_app.generation.providers import get_provider
    from workroom_app.generation.worker import run_worker
    from workroom_app.models import GenerationJob, JobStatus

    engine = db.get_engine(url)
    provider = StandInProvider(seconds) if renderer is None else get_provider("local")
    stop = asyncio.Event()
    worker = asyncio.ensure_future(
        run_worker(
            stop, engine=engine, provider=provider, billing_interval=0, start_local_service=False
        )
    )
    await asyncio.sleep(1.0)

    def count(status: str) -> int:
        with read_session(engine) as s:
            row = s.exec(
                select(func.count())
                .select_from(GenerationJob)
                .where(GenerationJob.status == status)
            ).one()
            return row if isinstance(row, int) else row[0]

    t_submit = time.monotonic()
    run_cpu0 = time.process_time()
    renderer_cpu0 = cpu_seconds(renderer) if renderer is not None else 0.0
    # Users submit at the same time: `submitters` threads, each committing one job at a time
    # (each commit notifies the worker). One thread alone took up to 30 s on a busy machine, so
    # the first jobs ended before the last were in flight.
    # Users submit through the web workers, other processes: `submitters` processes here, each
    # committing one job at a time (each commit notifies the worker), so the worker's process
    # (whose CPU is measured) shares neither its GIL nor its thread pool with them.
    # With 0, one thread of the worker's own process submits (as `make run` does on SQLite:
    # the web process runs the worker, and the in-process bus wakes it).
    if submitters <= 0:
        await asyncio.to_thread(submit_all, url, ids, provider.name)
    else:
        slices = [ids[i::submitters] for i in range(submitters)]
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(submitters, mp_context=context) as pool:
            await asyncio.gather(
                *(
                    loop.run_in_executor(pool, submit_all, url, part, provider.name)
                    for part in slices
                    if part
                )
            )
    submit_seconds = time.monotonic() - t_submit
    if renderer is not None:  # the whole run: how fast the renderer's drawing lets jobs finish
        while await asyncio.to_thread(count, JobStatus.SUCCEEDED) < len(ids):
            await asyncio.sleep(0.1)
        all_done = time.monotonic() - t_submit
        worker_cpu = time.process_time() - run_cpu0
        renderer_cpu = cpu_seconds(renderer) - renderer_cpu0
        stop.set()
        await worker
        await provider.aclose()
        db.dispose_engines()
        return {
            "jobs": len(ids),
            "job_seconds": seconds,
            "renderer": True,
            "submit_seconds": round(submit_seconds, 1),
            "all_done_s": round(all_done, 1),
            "jobs_per_s": round(len(ids) / all_done, 1),
            "renderer_cpu_pct": round(100 * renderer_cpu / all_done, 1),
            "worker_cpu_pct": round(100 * worker_cpu / all_done, 1),
        }
    while await asyncio.to_thread(count, JobStatus.QUEUED):
        await asyncio.sleep(0.2)
    all_running = time.monotonic() - t_submit
    # CPU of this process (the worker; the submitters are idle now) while every job is in
    # flight: the window ends a second before the first job can finish.
    await asyncio.sleep(0.5)
    window = max(1.0, min(window_max, seconds - (time.monotonic() - t_submit) - 1.0))
    print(f"in-flight window: {window:.1f} s", flush=True)
    cpu0, t0 = time.process_time(), time.monotonic()
    in_flight = await asyncio.to_thread(count, JobStatus.RUNNING)
    calls0 = provider.status_calls
    await asyncio.sleep(window)
    cpu_pct = 100 * (time.process_time() - cpu0) / (time.monotonic() - t0)
    polls_per_s = (provider.status_calls - calls0) / (time.monotonic() - t0)
    in_flight_after = await asyncio.to_thread(count, JobStatus.RUNNING)
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
        "in_flight_after": in_flight_after,
        "cpu_window_s": round(window, 1),
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
    parser.add_argument(
        "--submitters", type=int, default=2, help="processes submitting at the same time"
    )
    parser.add_argument(
        "--window", type=float, default=10.0, help="longest CPU window with every job in flight"
    )
    parser.add_argument(
        "--renderer", action="store_true", help="the real local renderer (jobs per second)"
    )
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
        renderer = None
        if args.renderer:
            renderer, renderer_url = stack.enter_context(local_renderer(run_dir, args.seconds))
            os.environ["WORKROOM_LOCAL_PROVIDER_URL"] = renderer_url
            settings.get_settings.cache_clear()
        result = asyncio.run(
            run(
                url,
                ids,
                args.seconds,
                run_dir / "media",
                submitters=args.submitters,
                window_max=args.window,
                renderer=renderer,
            )
        )
    result.update(
        {
            "database": "postgresql" if args.postgres else "sqlite",
            "load_before": round(load_before, 2),
            "load_after": round(load_average(), 2),
            "machine": f"{cpu_model()}, {os.cpu_count()} CPUs",
        }
    )
    if args.renderer:
        line = (
            f"{result['jobs']} jobs on the local renderer ({result['job_seconds']:g} s of waiting "
            f"each, then drawn at full size) on {result['database']}: {result['jobs_per_s']} jobs/s, "
            f"all done after {result['all_done_s']} s (submitting took {result['submit_seconds']} s); "
            f"renderer process {result['renderer_cpu_pct']} % CPU, worker process "
            f"{result['worker_cpu_pct']} % CPU. {result['machine']}, load "
            f"{result['load_before']} → {result['load_after']}."
        )
        print(line)
        print(json.dumps({"bench": "pipeline", **result}, separators=(",", ":")))
        return 0
    line = (
        f"{result['jobs']} jobs of {result['job_seconds']:g} s on {result['database']}: queued → dispatched "
        f"p50 {result['dispatch_p50_ms']} ms, p95 {result['dispatch_p95_ms']} ms; {result['in_flight']} in flight "
        f"in one worker process at {result['worker_cpu_pct_in_flight']} % CPU "
        f"over {result['cpu_window_s']} s "
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
