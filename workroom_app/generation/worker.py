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
import logging
import os
import secrets
import socket
import time
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Engine

from workroom_app.billing import clock
from workroom_app.db import get_engine, write_session
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
from workroom_app.models import GenerationJob, JobStatus

log = logging.getLogger("workroom.worker")

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
        settings=None,
        poll_interval: float | None = None,
        media_dir: Path | None = None,
    ) -> None:
        from workroom_app.settings import get_settings

        self.settings = settings or get_settings()
        self.engine = engine or get_engine()
        self.provider = provider or get_provider(settings=self.settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.poll_interval = poll_interval or self.settings.worker_poll_interval
        self.lease_seconds = self.settings.worker_lease_seconds
        self.max_parallel = self.settings.worker_max_parallel
        self.media_dir = Path(media_dir or self.settings.media_dir)
        self.tasks: dict[int, asyncio.Task] = {}

    # ------------------------------------------------------------- db helpers

    def _tx(self, fn, *args, **kwargs):
        with write_session(self.engine) as session:
            return fn(session, *args, **kwargs)

    async def _db(self, fn, *args, **kwargs):
        return await asyncio.to_thread(self._tx, fn, *args, **kwargs)

    # ------------------------------------------------------------- one pass

    async def run_once(self) -> list[int]:
        """Sweep, then claim as many jobs as there are free slots and start them.
        Returns the ids of the jobs started in this pass."""
        self.tasks = {jid: t for jid, t in self.tasks.items() if not t.done()}
        stopped = await self._db(jobs.sweep)
        for job in stopped:
            log.info("job %s timed out; credits returned", job.id)
            if job.provider_job_id and job.provider == self.provider.name:
                await self._cancel_quietly(job.provider_job_id)
        free = self.max_parallel - len(self.tasks)
        started: list[int] = []
        if free <= 0:
            return started
        ids = await self._db(jobs.claimable_ids, None, free + len(self.tasks), provider=self.provider.name)
        for jid in ids:
            if jid in self.tasks or len(started) >= free:
                continue
            job = await self._db(jobs.claim, jid, self.worker_id, lease_seconds=self.lease_seconds)
            if job is None:
                continue  # another worker was faster
            self.tasks[jid] = asyncio.create_task(self.drive(job), name=f"job-{jid}")
            started.append(jid)
        return started

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

    async def _drive(self, job: GenerationJob) -> None:
        pid = job.provider_job_id
        if not pid:
            try:
                pid = await self.provider.create(job)
            except (OSError, GenerationError) as exc:
                # An upload vanished from disk since submission: it cannot come back.
                log.warning("job %s: inputs unavailable (%s)", job.id, exc)
                await self._db(
                    jobs.fail, job.id, JobStatus.FAILED, "The uploaded files for this generation are no longer available."
                )
                return
            except ProviderError as exc:
                if exc.retriable:
                    # Leave it claimed: a later pass (after the lease) tries again,
                    # and the deadline bounds how long.
                    log.warning("job %s: provider unavailable (%s)", job.id, exc)
                    await self._db(self._release, job.id)
                    return
                await self._db(jobs.fail, job.id, JobStatus.FAILED, _user_error("The generation could not start", str(exc)))
                return
            if not await self._db(jobs.mark_running, job.id, pid, worker_id=self.worker_id):
                # Ended (timed out) or taken over while we were creating it.
                await self._cancel_quietly(pid)
                return
        progress = job.progress
        while True:
            try:
                status = await self.provider.status(pid)
            except ProviderError as exc:
                if not exc.retriable:
                    await self._db(jobs.fail, job.id, JobStatus.FAILED, _user_error("The generation failed", str(exc)))
                    return
                log.warning("job %s: status unavailable (%s)", job.id, exc)
                if not await self._renew(job.id, progress):
                    return
                await asyncio.sleep(self.poll_interval)
                continue
            if status.state == SUCCEEDED:
                await self._finish_success(job, pid)
                return
            if status.state in (FAILED, REJECTED, CANCELED):
                ending = JobStatus.REJECTED if status.state == REJECTED else JobStatus.FAILED
                detail = status.error if status.state != CANCELED else "the generation service cancelled it"
                prefix = "The request was rejected" if ending == JobStatus.REJECTED else "The generation failed"
                await self._db(jobs.fail, job.id, ending, _user_error(prefix, detail))
                return
            progress = max(progress, min(99, status.progress))
            if not await self._renew(job.id, progress):
                # No longer ours (timed out by the sweep or cancelled): stop the render.
                await self._cancel_quietly(pid)
                return
            await asyncio.sleep(self.poll_interval)

    async def _renew(self, job_id: int, progress: int) -> bool:
        return await self._db(
            jobs.report_progress, job_id, progress, worker_id=self.worker_id, lease_seconds=self.lease_seconds
        )

    async def _finish_success(self, job: GenerationJob, pid: str) -> None:
        try:
            fetch_all = getattr(self.provider, "fetch_outputs", None)
            outputs = await fetch_all(pid) if fetch_all is not None else [await self.provider.fetch_output(pid)]
        except ProviderError as exc:
            if exc.retriable:
                await self._db(self._release, job.id)
                return
            await self._db(jobs.fail, job.id, JobStatus.FAILED, _user_error("The result could not be fetched", str(exc)))
            return
        wrong = [mime for _data, mime in outputs if not mime.startswith(EXPECTED_KINDS.get(job.feature, ("",)))]
        if not outputs or wrong:
            await self._db(
                jobs.fail, job.id, JobStatus.FAILED,
                f"The generation service returned the wrong kind of file ({wrong[0] if wrong else 'none'}).",
            )
            return
        paths = [self._store(job, data, mime, index) for index, (data, mime) in enumerate(outputs, start=1)]
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

    def _release(self, session, job_id: int) -> None:
        """Give up the lease now so the next pass (of any worker) can retry the job."""
        session.exec(
            update(GenerationJob)
            .where(
                GenerationJob.id == job_id,
                GenerationJob.status == JobStatus.RUNNING,
                GenerationJob.worker_id == self.worker_id,
            )
            .values(lease_until=None, updated_at=clock.now())
            .execution_options(synchronize_session=False)
        )

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
        for jid, _task in tasks:
            try:
                await self._db(self._release, jid)
            except Exception:
                log.exception("could not release job %s", jid)
        self.tasks = {}


def _billing_tick(engine: Engine | None) -> None:
    from workroom_app.billing import subscriptions
    from workroom_app.db import get_engine

    report, _sent = subscriptions.scheduled_tick(engine or get_engine())
    if report.processed or report.errors:
        log.info("billing scheduler: %s", report)


async def run_worker(
    stop_event: asyncio.Event,
    poll_interval: float | None = None,
    *,
    engine: Engine | None = None,
    provider: Provider | None = None,
    worker_id: str | None = None,
    start_local_service: bool = True,
    billing_interval: float = 15.0,
) -> None:
    """Run until stop_event is set; every `billing_interval` seconds (0: never)
    also run the billing scheduler (renewals due, retries, receipts). With the local provider, start the local
    service in-process if nothing answers at settings.local_provider_url."""
    from workroom_app.settings import get_settings

    settings = get_settings()
    service = None
    if provider is None and settings.generation_provider == "local" and start_local_service:
        from workroom_app.generation.providers.local import ensure_local_service

        service = await asyncio.to_thread(ensure_local_service, settings.local_provider_url)
        if service is not None:
            log.info("started the local generation service at %s", service.url)
    worker = Worker(engine, provider, worker_id=worker_id, poll_interval=poll_interval)
    log.info("worker %s started (provider %s)", worker.worker_id, worker.provider.name)
    next_billing_tick = 0.0
    try:
        while not stop_event.is_set():
            try:
                await worker.run_once()
            except Exception:
                log.exception("worker pass failed; trying again")
            if billing_interval and time.monotonic() >= next_billing_tick:
                # The local gateway's renewals, retries and receipts are driven
                # from here (Stripe's arrive as invoice.paid webhooks instead),
                # in a thread because the billing code is synchronous.
                next_billing_tick = time.monotonic() + billing_interval
                try:
                    await asyncio.to_thread(_billing_tick, engine)
                except Exception:
                    log.exception("billing scheduler pass failed; trying again")
            try:
                await asyncio.wait_for(stop_event.wait(), timeout=worker.poll_interval)
            except TimeoutError:
                pass
    finally:
        await worker.shutdown()
        if provider is None:
            await worker.provider.aclose()
        if service is not None:
            await asyncio.to_thread(service.stop)
