"""The worker: takes queued jobs, sends them to the provider, follows their
progress into the job row, stores the output, and ends each job (refunding
failures). Runs as `workroom worker`.

Safety:
- A job is taken with one conditional UPDATE (status queued -> running), so two
  workers never run the same job; the claim is a lease the worker renews at
  every poll.
- A worker that dies stops renewing: when the lease runs out another worker (or
  the same one restarted) takes the job over; with a provider id stored it
  polls the provider again, without one it sends the job again. A worker that
  stops cleanly releases its leases so a restart resumes at once.
- Every pass runs the sweep: a job past its deadline ends as timed_out with a
  refund, whatever state its worker is in, so no job stays running forever.
Database calls run in threads (asyncio.to_thread): a write can wait for the
SQLite lock and must not stall the polling of other jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app import db, notifications
from workroom_app.billing import clock, staff_rollups
from workroom_app.db import write_session
from workroom_app.generation import jobs
from workroom_app.generation.errors import GenerationError
from workroom_app.generation.providers import (
    CANCELED,
    FAILED,
    REJECTED,
    SUCCEEDED,
    Provider,
    ProviderError,
    get_provider,
)
from workroom_app.generation.providers.local import ensure_local_service
from workroom_app.models import AppSetting, GenerationJob, JobStatus
from workroom_app.scheduler_lock import SchedulerLock
from workroom_app.settings import Settings, get_settings

P = ParamSpec("P")

log = logging.getLogger("workroom.worker")
T = TypeVar("T")

# Longest wait between two status polls of a job that shows no progress.
MAX_POLL_SECONDS = 5.0
# Progress reports and lease renewals of all this worker's jobs are written together, at most
# this long after the first of them: one transaction (one thread hop, one commit) for all the
# jobs that moved, not one per job. A thousand jobs in flight then cost a few commits a second.
REPORT_BATCH_SECONDS = 0.1

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/mp4": "m4a",
}
# What each feature may return: a provider answering a voiceover with a PNG is broken.
EXPECTED_KINDS = {
    "image": ("image/",),
    "video": ("video/", "image/gif", "image/webp"),
    "voiceover": ("audio/",),
    "face_swap": ("image/", "video/"),
    "lip_sync": ("video/", "image/gif", "image/webp"),
}


def _user_error(prefix: str, detail: str | None) -> str:
    return f"{prefix}: {detail}" if detail else prefix


class Worker:
    def __init__(
        self,
        engine: Engine | None = None,
        provider: Provider | None = None,
        *,
        worker_id: str | None = None,
        settings: Settings | None = None,
        poll_interval: float | None = None,
        media_dir: Path | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.engine = engine or db.get_engine()
        self.provider = provider or get_provider(settings=self.settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.poll_interval = poll_interval or self.settings.worker_poll_interval
        self.lease_seconds = self.settings.worker_lease_seconds
        self.max_parallel = self.settings.worker_max_parallel
        self.media_dir = Path(media_dir or self.settings.media_dir)
        self.tasks: dict[int, asyncio.Task] = {}
        # Set when a slot frees up (run_worker then claims the next job at once).
        self.wake: asyncio.Event | None = None
        # job id -> (account id, progress, progress last reported, waiters): the next batch.
        self._reports: dict[int, tuple[int, int, int | None, list[asyncio.Future[bool]]]] = {}
        self._report_writer: asyncio.Task | None = None

    # ------------------------------------------------------------- db helpers

    def _tx(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        with write_session(self.engine) as session:
            return fn(session, *args, **kwargs)

    async def _db(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await asyncio.to_thread(functools.partial(self._tx, fn, *args, **kwargs))

    # ------------------------------------------------------------- one pass

    async def run_once(self, sweep: bool = True) -> list[int]:
        """Sweep (unless `sweep` is False: a pass woken by a submission skips it), then claim as
        many jobs as there are free slots and start them. Returns the ids of the jobs started."""
        self.tasks = {jid: t for jid, t in self.tasks.items() if not t.done()}
        if sweep:
            stopped = await self._db(jobs.sweep)
            for job in stopped:
                log.info("job %s timed out; credits returned", job.id)
                if job.provider_job_id and job.provider == self.provider.name:
                    await self._cancel_quietly(job.provider_job_id)
        free = self.max_parallel - len(self.tasks)
        started: list[int] = []
        if free <= 0:
            return started
        # One transaction reads the candidates and claims them (each with its conditional UPDATE).
        claimed = await self._db(self._claim_free, free)
        for job in claimed:
            self.tasks[job.id] = asyncio.create_task(self.drive(job), name=f"job-{job.id}")
            started.append(job.id)
        return started

    def _claim_free(self, session: Session, free: int) -> list[GenerationJob]:
        ids = jobs.claimable_ids(session, None, free + len(self.tasks), provider=self.provider.name)
        wanted = [jid for jid in ids if jid not in self.tasks][:free]
        # Jobs another worker took first are left out.
        return jobs.claim_many(session, wanted, self.worker_id, lease_seconds=self.lease_seconds)

    async def wait_idle(self) -> None:
        """Let every started job run to its end (tests and `worker --once`)."""
        while self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            self.tasks = {jid: t for jid, t in self.tasks.items() if not t.done()}

    # ------------------------------------------------------------- one job

    async def drive(self, job: GenerationJob) -> None:
        try:
            await self._drive(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one job take the worker down
            log.exception("job %s: unexpected error; it will be retried after its lease", job.id)
        finally:
            if self.wake is not None:
                self.wake.set()

    async def _drive(self, job: GenerationJob) -> None:
        pid = job.provider_job_id
        if not pid:
            try:
                pid = await self.provider.create(job)
            except (OSError, GenerationError) as exc:
                # An upload vanished from disk since submission: it cannot come back.
                log.warning("job %s: inputs unavailable (%s)", job.id, exc)
                await self._db(
                    jobs.fail,
                    job.id,
                    JobStatus.FAILED,
                    "The uploaded files for this generation are no longer available.",
                )
                return
            except ProviderError as exc:
                if exc.retriable:
                    # Leave it claimed: a later pass (after the lease) tries again,
                    # and the deadline bounds how long.
                    log.warning("job %s: provider unavailable (%s)", job.id, exc)
                    await self._db(self._release, job.id)
                    return
                await self._db(
                    jobs.fail,
                    job.id,
                    JobStatus.FAILED,
                    _user_error("The generation could not start", str(exc)),
                )
                return
            if not await self._db(jobs.mark_running, job.id, pid, worker_id=self.worker_id):
                # Ended (timed out) or taken over while we were creating it.
                await self._cancel_quietly(pid)
                return
        progress = job.progress
        started = time.monotonic()
        reported = (progress, started)
        quiet = 0  # status polls in a row without progress
        while True:
            try:
                status = await self.provider.status(pid)
            except ProviderError as exc:
                if not exc.retriable:
                    await self._db(
                        jobs.fail,
                        job.id,
                        JobStatus.FAILED,
                        _user_error("The generation failed", str(exc)),
                    )
                    return
                log.warning("job %s: status unavailable (%s)", job.id, exc)
                if not await self._renew(job, progress, reported[0]):
                    return
                reported = (progress, time.monotonic())
                await asyncio.sleep(self.poll_interval)
                continue
            if status.state == SUCCEEDED:
                await self._finish_success(job, pid)
                return
            if status.state in (FAILED, REJECTED, CANCELED):
                ending = JobStatus.REJECTED if status.state == REJECTED else JobStatus.FAILED
                detail = (
                    status.error
                    if status.state != CANCELED
                    else "the generation service cancelled it"
                )
                prefix = (
                    "The request was rejected"
                    if ending == JobStatus.REJECTED
                    else "The generation failed"
                )
                await self._db(jobs.fail, job.id, ending, _user_error(prefix, detail))
                return
            progress = max(progress, min(99, status.progress))
            # Write only when the user sees a difference or the lease needs renewing: a job that
            # waits minutes on a hosted provider costs no write per poll.
            moved = progress != reported[0]
            if moved or time.monotonic() - reported[1] > self.lease_seconds / 3:
                if not await self._renew(job, progress, reported[0]):
                    # No longer ours (timed out by the sweep or cancelled): stop the render.
                    await self._cancel_quietly(pid)
                    return
                reported = (progress, time.monotonic())
            # A job that reports no progress is asked less and less often (up to MAX_POLL_SECONDS),
            # and a job that has run for a while is not asked more often than a tenth of its age
            # (one that took 30 s so far will not end in the next half second): a thousand jobs
            # waiting minutes on a hosted provider cost a few requests a second.
            quiet = 0 if moved else quiet + 1
            wait = max(self.poll_interval * (1.5**quiet), (time.monotonic() - started) / 10)
            await asyncio.sleep(min(wait, max(self.poll_interval, MAX_POLL_SECONDS)))

    async def _renew(self, job: GenerationJob, progress: int, previous: int | None = None) -> bool:
        """Store the job's progress and renew its lease, in the next batch of reports. False when
        the job is no longer this worker's running job."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        queued = self._reports.get(job.id)
        if queued is not None:  # one job reports once per batch: the higher progress wins
            _account, queued_progress, queued_previous, waiters = queued
            progress = max(progress, queued_progress)
            if previous is None or queued_previous is None:
                previous = None  # tell the tabs whenever the row is still ours
            else:
                previous = min(previous, queued_previous)
            waiters.append(waiter)
        else:
            waiters = [waiter]
        self._reports[job.id] = (job.account_id, progress, previous, waiters)
        if self._report_writer is None or self._report_writer.done():
            self._report_writer = asyncio.create_task(self._write_reports_soon())
        return await waiter

    async def _write_reports_soon(self) -> None:
        await asyncio.sleep(REPORT_BATCH_SECONDS)
        while self._reports:
            batch, self._reports = self._reports, {}
            reports = [(jid, a, p, prev) for jid, (a, p, prev, _w) in batch.items()]
            try:
                try:
                    ours = await self._db(self._write_reports, reports)
                except Exception:  # noqa: BLE001  (a busy SQLite lock): once more, then give up
                    await asyncio.sleep(REPORT_BATCH_SECONDS)
                    ours = await self._db(self._write_reports, reports)
            except Exception as exc:  # noqa: BLE001  (each job's drive() gets it, as before)
                for _a, _p, _prev, waiters in batch.values():
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                continue
            for jid, (_a, _p, _prev, waiters) in batch.items():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(jid in ours)

    def _write_reports(
        self, session: Session, reports: list[tuple[int, int, int, int | None]]
    ) -> set[int]:
        """One transaction: each job's progress and lease; the ids still this worker's."""
        return jobs.report_progress_many(
            session, reports, worker_id=self.worker_id, lease_seconds=self.lease_seconds
        )

    async def _finish_success(self, job: GenerationJob, pid: str) -> None:
        try:
            fetch_all = getattr(self.provider, "fetch_outputs", None)
            outputs = (
                await fetch_all(pid)
                if fetch_all is not None
                else [await self.provider.fetch_output(pid)]
            )
        except ProviderError as exc:
            if exc.retriable:
                await self._db(self._release, job.id)
                return
            await self._db(
                jobs.fail,
                job.id,
                JobStatus.FAILED,
                _user_error("The result could not be fetched", str(exc)),
            )
            return
        wrong = [
            mime
            for _data, mime in outputs
            if not mime.startswith(EXPECTED_KINDS.get(job.feature, ("",)))
        ]
        if not outputs or wrong:
            await self._db(
                jobs.fail,
                job.id,
                JobStatus.FAILED,
                f"The generation service returned the wrong kind of file ({wrong[0] if wrong else 'none'}).",
            )
            return
        paths = [
            self._store(job, data, mime, index)
            for index, (data, mime) in enumerate(outputs, start=1)
        ]
        await self._db(jobs.succeed, job.id, paths[0], outputs[0][1], output_count=len(paths))

    def _store(self, job: GenerationJob, data: bytes, mime: str, index: int = 1) -> str:
        ext = EXTENSIONS.get(mime, "bin")
        relative = jobs.output_relative_path(job.account_id, job.id, index, ext)
        path = self.media_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a reader never sees half a file
        return relative

    def _release(self, session: Session, job_id: int, wake_others: bool = False) -> None:
        """Give up the lease now so the next pass (of any worker) can retry the job. With
        `wake_others` (this worker is stopping) the other workers are woken to take it at once;
        a job released after a provider error waits for the next pass instead, so an unavailable
        provider is not retried in a tight loop."""
        released = session.exec(
            update(GenerationJob)
            .where(
                GenerationJob.id == job_id,
                GenerationJob.status == JobStatus.RUNNING,
                GenerationJob.worker_id == self.worker_id,
            )
            .values(lease_until=None, updated_at=clock.now())
            .execution_options(synchronize_session=False)
            .returning(GenerationJob.account_id)
        ).first()
        if released is not None and wake_others:
            notifications.announce(session, released[0], notifications.QUEUED)

    async def _cancel_quietly(self, pid: str) -> None:
        try:
            await self.provider.cancel(pid)
        except ProviderError as exc:
            log.info("provider cancel of %s failed: %s", pid, exc)

    async def shutdown(self) -> None:
        """Stop following jobs and release their leases: they stay running rows and
        the next worker resumes them at once."""
        tasks = list(self.tasks.items())
        for _jid, task in tasks:
            task.cancel()
        await asyncio.gather(*(t for _j, t in tasks), return_exceptions=True)
        # A batch being written ends first, so it cannot renew a lease released below.
        self._reports.clear()
        if self._report_writer is not None:
            await asyncio.gather(self._report_writer, return_exceptions=True)
        for jid, _task in tasks:
            try:
                await self._db(self._release, jid, True)
            except Exception:
                log.exception("could not release job %s", jid)
        self.tasks = {}


def _billing_tick(engine: Engine | None) -> None:
    # billing.invoices, ledger and receipts import one another: imported first from here (at
    # start-up, before the ledger), subscriptions would meet that cycle half-loaded.
    from workroom_app.billing import subscriptions  # noqa: PLC0415

    report, _sent = subscriptions.scheduled_tick(engine or db.get_engine())
    if report.processed or report.errors:
        log.info("billing scheduler: %s", report)


# The staff overview's closed-day rollups are filled by the scheduler, not by a staff visit.
ROLLUP_WARM_SECONDS = 3600.0


def _warm_rollups(engine: Engine | None) -> None:
    staff_rollups.warm(engine or db.get_engine())


HEARTBEAT_SECONDS = 10.0
HEARTBEAT_PREFIX = "worker:"
# Without notifications (or as a safety net with them) a pass runs at least this often: it
# sweeps deadlines and takes over jobs whose worker died (their lease ran out).
IDLE_PASS_SECONDS = 5.0


def _heartbeat(session: Session, worker_id: str, *, stopping: bool = False) -> None:
    """Tell /api/health this worker is alive (app_setting "worker:<id>" = unix time)."""
    key = (HEARTBEAT_PREFIX + worker_id)[:64]
    row = session.get(AppSetting, key)
    if stopping:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(AppSetting(key=key, value=f"{time.time():.3f}"))
    else:
        row.value = f"{time.time():.3f}"


def live_worker_count(session: Session, within: float = 3 * HEARTBEAT_SECONDS) -> int:
    """Workers that reported within `within` seconds (for /api/health)."""
    values = session.exec(
        select(AppSetting.value).where(AppSetting.key.startswith(HEARTBEAT_PREFIX))
    ).all()
    now = time.time()
    count = 0
    for value in values:
        try:
            count += now - float(value) < within
        except ValueError:
            continue
    return count


async def run_worker(
    stop_event: asyncio.Event,
    poll_interval: float | None = None,
    *,
    engine: Engine | None = None,
    provider: Provider | None = None,
    worker_id: str | None = None,
    start_local_service: bool = True,
    billing_interval: float = 15.0,
    notified: bool = True,
) -> None:
    """Run until stop_event is set; every `billing_interval` seconds (0: never)
    also run the billing scheduler (renewals due, retries, receipts) when this process holds
    the scheduler lock (one per deployment). With the local provider, start the local
    service in-process if nothing answers at settings.local_provider_url.

    With `notified`, a submitted job is claimed as soon as its transaction commits (change
    notifications, see workroom_app/notifications.py); passes otherwise run every
    IDLE_PASS_SECONDS (or `poll_interval` when notifications are off)."""
    settings = get_settings()
    service = None
    if provider is None and settings.generation_provider == "local" and start_local_service:
        service = await asyncio.to_thread(ensure_local_service, settings.local_provider_url)
        if service is not None:
            log.info("started the local generation service at %s", service.url)
    worker = Worker(engine, provider, worker_id=worker_id, poll_interval=poll_interval)
    log.info("worker %s started (provider %s)", worker.worker_id, worker.provider.name)
    wake = asyncio.Event()
    worker.wake = wake
    feed = own_feed = None
    idle_pass = worker.poll_interval
    if notified:
        try:
            if engine is None:
                feed = await notifications.process_feed()
            else:
                feed = own_feed = notifications.ChangeFeed(engine)
                await feed.start()
        except Exception:
            log.exception("change notifications unavailable: the worker polls instead")
            feed = None
    if feed is not None:

        def on_change(change: notifications.Change) -> None:
            if notifications.QUEUED in change.kinds:
                wake.set()

        feed.subscribe(on_change, on_resync=wake.set)
        idle_pass = max(worker.poll_interval, IDLE_PASS_SECONDS)
    scheduler = (
        SchedulerLock(worker.engine) if billing_interval and settings.run_scheduler else None
    )
    next_billing_tick = 0.0
    next_rollup_warm = 0.0
    next_heartbeat = 0.0
    try:
        next_sweep = 0.0
        while not stop_event.is_set():
            wake.clear()
            now = time.monotonic()
            sweep = now >= next_sweep
            if sweep:  # deadlines and dead workers' leases: checked on the idle pass's rhythm
                next_sweep = now + idle_pass
            try:
                await worker.run_once(sweep=sweep)
            except Exception:
                log.exception("worker pass failed; trying again")
            now = time.monotonic()
            if now >= next_heartbeat:
                next_heartbeat = now + HEARTBEAT_SECONDS
                try:
                    await worker._db(_heartbeat, worker.worker_id)
                except Exception:
                    log.exception("worker heartbeat failed")
            if scheduler is not None and now >= next_billing_tick:
                # The local gateway's renewals, retries and receipts are driven
                # from here (Stripe's arrive as invoice.paid webhooks instead),
                # in a thread because the billing code is synchronous.
                next_billing_tick = now + billing_interval
                try:
                    if await asyncio.to_thread(scheduler.try_acquire):
                        await asyncio.to_thread(_billing_tick, engine)
                        if now >= next_rollup_warm:
                            next_rollup_warm = now + ROLLUP_WARM_SECONDS
                            await asyncio.to_thread(_warm_rollups, engine)
                except Exception:
                    log.exception("billing scheduler pass failed; trying again")
            await _wait_any(stop_event, wake, idle_pass)
    finally:
        if feed is not None:
            feed.unsubscribe(on_change)
        await worker.shutdown()
        with contextlib.suppress(Exception):  # the database may be gone at shutdown
            await worker._db(_heartbeat, worker.worker_id, stopping=True)
        if scheduler is not None:
            await asyncio.to_thread(scheduler.release)
        if own_feed is not None:
            await own_feed.stop()
        if provider is None:
            await worker.provider.aclose()
        if service is not None:
            await asyncio.to_thread(service.stop)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
