"""The generation life cycle: queued -> running -> succeeded, or failed /
rejected / timed_out / cancelled -> refunded.

Every function takes the caller's session (an open ``write_session``
transaction for writers) and never commits, like the ledger, so a job row and
its ledger rows always change together.

Money rules kept here:
- The price is computed again on the server (catalog.quote) from the request;
  nothing the caller says about cost is read.
- The debit uses the key ``gen:{account_id}:{client_request_id}``: a retried
  submit returns the first job and charges once.
- The refund uses the key ``refund:gen:{job_id}`` and a job row locked before
  its status is checked: a failure reported twice, concurrently, or again after
  a crash refunds once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Integer, bindparam, case, func, or_, update
from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import accounts, catalog, clock, ledger
from workroom_app.generation import media, uploads
from workroom_app.generation.errors import (
    CannotCancel,
    GenerationError,
    InvalidRequest,
    JobNotFound,
    NotEnoughCredits,
    PriceChanged,
    TooManyRunning,
)
from workroom_app.models import Account, GenerationJob, JobStatus
from workroom_app.settings import get_settings

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
TERMINAL = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.REJECTED,
    JobStatus.TIMED_OUT,
    JobStatus.CANCELLED,
)
FAILURE_STATUSES = (JobStatus.FAILED, JobStatus.REJECTED, JobStatus.TIMED_OUT)

# How long a job may take from submission before the sweep stops it and
# returns the credits. Generous: a busy provider queues before it renders.
DEADLINE_SECONDS: dict[str, int] = {
    "image": 5 * 60,
    "video": 20 * 60,
    "voiceover": 5 * 60,
    "face_swap": 10 * 60,
    "lip_sync": 20 * 60,
}

MAX_PROMPT_CHARS = 2000
MAX_ERROR_CHARS = 500
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# The fields the catalog prices; everything else in a request is not sent to quote().
_PRICED_FIELDS = ("feature", "model", "resolution", "duration", "count", "text", "mode")
TIMEOUT_MESSAGE = "The generation took too long and was stopped."


# ------------------------------------------------------------------ helpers


def _plan_key(session: Session, account_id: int) -> str:
    return accounts.current_plan_key(session, account_id)


def _check_id(value: object) -> int:
    # bool is an int subclass; a browser can send true for an id.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise JobNotFound()
    if value <= 0 or value > 2**62:
        raise JobNotFound()
    return value


def _check_client_request_id(value: object) -> str:
    if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
        raise InvalidRequest(
            "The request id is missing or malformed; reload the page and try again.",
            field="client_request_id",
        )
    return value


def _lock_account(session: Session, account_id: int) -> None:
    """Serialise submissions of one account, so the running-jobs count cannot be
    passed by two requests at once (SQLite: the write transaction already is)."""
    found = session.exec(
        select(Account.id).where(Account.id == account_id).with_for_update()
    ).first()
    if found is None:
        raise InvalidRequest("Your account was not found. Log in again.")


def _lock_job(session: Session, job_id: int) -> GenerationJob | None:
    return session.exec(
        select(GenerationJob)
        .where(GenerationJob.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def params(job: GenerationJob) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(job.params_json)
    return stored


def output_file(job: GenerationJob, media_dir: Path | None = None, index: int = 1) -> Path | None:
    """Absolute path of a finished job's file number `index` (1 = output_path; the others sit
    beside it, see output_relative_path), or None when it has no such file."""
    if not job.output_path or not 1 <= index <= (job.output_count or 1):
        return None
    if media_dir is None:
        media_dir = get_settings().media_dir
    first = Path(media_dir) / job.output_path
    if index == 1:
        return first
    return first.with_name(f"{first.stem}-{index}{first.suffix}")


def output_relative_path(account_id: int, job_id: int, index: int, ext: str) -> str:
    """Where a job's output file number `index` is stored, relative to media_dir:
    <account>/<job>.<ext>, then <account>/<job>-2.<ext>, <job>-3.<ext>, ... (N images)."""
    suffix = "" if index == 1 else f"-{int(index)}"
    return f"{int(account_id)}/{int(job_id)}{suffix}.{ext}"


# ------------------------------------------------------------------ request


@dataclass(frozen=True)
class ParsedRequest:
    priced: dict[str, Any]  # what quote() sees
    extras: dict[str, Any]  # what the catalog does not price: prompt, uploads


def parse_request(account_id: int, request: object) -> ParsedRequest:
    """Shape checks the catalog does not do (prompt, uploads). Raises InvalidRequest."""
    if not isinstance(request, dict):
        raise InvalidRequest("Choose what to generate.")
    feature = request.get("feature")
    if not isinstance(feature, str) or feature not in catalog.feature_labels():
        raise InvalidRequest(catalog.choose_feature_message(), field="feature")
    priced = {k: request[k] for k in _PRICED_FIELDS if k in request and request[k] is not None}
    extras: dict[str, Any] = {}

    prompt = request.get("prompt")
    if feature in ("image", "video") and (not isinstance(prompt, str) or not prompt.strip()):
        raise InvalidRequest("Describe what to generate in the prompt.", field="prompt")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InvalidRequest("The prompt must be text.", field="prompt")
        prompt = prompt.strip()
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"The prompt is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}.",
                field="prompt",
            )
        if prompt:
            extras["prompt"] = prompt
    if feature == "voiceover":
        text = request.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("Enter the text to read out.", field="text")

    roles = uploads.UPLOAD_ROLES.get(feature)
    if roles:
        given = request.get("uploads")
        if not isinstance(given, dict):
            given = {}
        resolved: dict[str, str] = {}
        for role, kinds in roles.items():
            resolved[role] = uploads.check_reference(account_id, given.get(role), role, kinds)
        extras["uploads"] = resolved
    return ParsedRequest(priced=priced, extras=extras)


def price(
    session: Session, account_id: int, request: object
) -> tuple[dict[str, Any], catalog.Quote, str]:
    """(params, Quote, plan_key) for this account now; InvalidRequest when it cannot run.

    params are what the job stores and the provider gets: the request as the
    catalog understood it (normalised) plus the prompt and uploads."""
    parsed = parse_request(account_id, request)
    plan_key = _plan_key(session, account_id)
    timed = _media_length(account_id, parsed)
    if timed is not None:
        # The length of the uploaded media is the duration, whatever the form said.
        parsed.priced["duration"] = media.billed_seconds(timed[1])
    try:
        quote = catalog.quote(parsed.priced, plan_key)
    except catalog.QuoteError as exc:
        message = str(exc)
        if timed is not None and getattr(exc, "field", None) == "duration":
            message = (
                uploads.length_problem(parsed.priced["feature"], timed[0], timed[1], plan_key)
                or message
            )
        raise InvalidRequest(
            message,
            field=getattr(exc, "field", None),
            required_plan=getattr(exc, "required_plan", None),
        ) from None
    params = {**quote.request.as_params(), **parsed.extras}
    if timed is not None:
        params["media_seconds"] = round(timed[1], 3)
    if parsed.priced.get("mode") is not None:
        params["mode"] = quote.request.model
    return params, quote, plan_key


def _media_length(account_id: int, parsed: ParsedRequest) -> tuple[str, float] | None:
    """(what the file is called, its length in seconds) when the feature is priced by the length
    of an upload (lip sync: the audio; face swap video: the target clip), else None. Measured from
    the stored file: a duration sent by the browser is never used for these."""
    feature = parsed.priced["feature"]
    role = uploads.TIMED_ROLES.get(feature)
    if role is None:
        return None
    if (
        feature == "face_swap"
        and (parsed.priced.get("mode") or parsed.priced.get("model")) != "video"
    ):
        return None
    ref = parsed.extras["uploads"][role]
    seconds = uploads.stored_seconds(account_id, ref)
    label = uploads.ROLE_LABELS[role]
    if not seconds:
        if feature == "face_swap":
            raise InvalidRequest(
                "A face swap video needs a video as the target (MP4, MOV, WebM or an animated GIF); "
                "for a picture, choose Image.",
                field="uploads",
            )
        raise InvalidRequest(f"Upload {label} again: its length cannot be read.", field="uploads")
    return label[0].upper() + label[1:], seconds


# ------------------------------------------------------------------ submit


def count_active(session: Session, account_id: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(GenerationJob)
        .where(GenerationJob.account_id == account_id, GenerationJob.status.in_(ACTIVE))
    ).one()


def submit(
    session: Session,
    account_id: int,
    request: dict,
    *,
    client_request_id: str,
    shown_cost: int | None = None,
    provider: str | None = None,
) -> GenerationJob:
    """Price, check limits, debit and record the job, all in the caller's transaction.

    The same client_request_id again returns the first job and charges nothing (whatever price
    the retry carries). `shown_cost` is the cost the user was shown, a consent check only: when
    the price now differs, PriceChanged and nothing is charged; it is never used as the price.
    Raises a GenerationError (nothing written) for bad input, a price the user did not see, a
    plan limit, too many running jobs, or too few credits.
    """
    key = _check_client_request_id(client_request_id)
    _lock_account(session, account_id)
    existing = session.exec(
        select(GenerationJob).where(
            GenerationJob.account_id == account_id, GenerationJob.client_request_id == key
        )
    ).first()
    if existing is not None:
        return existing

    params_, quote, plan_key = price(session, account_id, request)
    cost = 0 if quote.unlimited else int(quote.cost)
    if shown_cost is not None and cost != shown_cost:
        raise PriceChanged(quote.label)
    limit = catalog.max_concurrent(plan_key)
    if count_active(session, account_id) >= limit:
        raise TooManyRunning(limit, catalog.get_catalog().plan(plan_key).name)

    if provider is None:
        provider = get_settings().generation_provider
    now = clock.now()
    feature = quote.request.feature
    job = GenerationJob(
        account_id=account_id,
        client_request_id=key,
        feature=feature,
        model=quote.request.model,
        params_json=json.dumps(params_, sort_keys=True),
        cost=cost,
        unlimited=bool(quote.unlimited),
        status=JobStatus.QUEUED,
        progress=0,
        provider=provider,
        created_at=now,
        deadline_at=now + timedelta(seconds=DEADLINE_SECONDS[feature]),
        updated_at=now,
    )
    # A savepoint: when the debit is refused the job row goes too, even if the
    # caller catches the error and commits its transaction.
    with session.begin_nested():
        session.add(job)
        session.flush()
        if cost > 0:
            try:
                result = ledger.debit(
                    session,
                    account_id,
                    cost,
                    feature=feature,
                    idempotency_key=f"gen:{account_id}:{key}",
                    reference_type="generation",
                    reference_id=str(job.id),
                )
            except ledger.InsufficientCredits as exc:
                raise NotEnoughCredits(exc.needed, exc.available) from None
            except ledger.LedgerError as exc:  # e.g. no balance row: its message is user-readable
                raise GenerationError(str(exc)) from None
            job.debit_entry_id = result.entry_id
            session.add(job)
            session.flush()
    # Commit wakes the workers (no poll to wait for) and shows the job in the user's other tabs.
    notifications.announce(session, account_id, notifications.JOB, notifications.QUEUED)
    return job


# ------------------------------------------------------------------ reads


def get_job(session: Session, account_id: int, job_id: object) -> GenerationJob:
    """The account's job; JobNotFound for a missing id and for another user's alike."""
    jid = _check_id(job_id)
    job = session.get(GenerationJob, jid)
    if job is None or job.account_id != account_id:
        raise JobNotFound()
    return job


def list_jobs(
    session: Session, account_id: int, limit: int = 20, before_id: int | None = None
) -> list[GenerationJob]:
    """Newest first; pass the last id of a page as before_id for the next (keyset paging)."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        limit = 20
    limit = max(1, min(limit, 100))
    stmt = select(GenerationJob).where(GenerationJob.account_id == account_id)
    if before_id is not None:
        stmt = stmt.where(GenerationJob.id < _check_id(before_id))
    return list(session.exec(stmt.order_by(GenerationJob.id.desc()).limit(limit)).all())


# Built once: every /generate page load and every job push reads it (building it per call cost
# more than running it on SQLite). Equalities, not IN: no list parameter to expand per run.
_ACTIVE_JOBS = (
    select(GenerationJob)
    .where(
        GenerationJob.account_id == bindparam("account_id"),
        or_(*(GenerationJob.status == status for status in ACTIVE)),
    )
    .order_by(GenerationJob.id)
)


def active_jobs(session: Session, account_id: int) -> list[GenerationJob]:
    return list(session.exec(_ACTIVE_JOBS, params={"account_id": int(account_id)}).all())


STATUS_LABELS: dict[str, str] = {
    JobStatus.QUEUED: "Queued",
    JobStatus.RUNNING: "Running",
    JobStatus.SUCCEEDED: "Done",
    JobStatus.FAILED: "Failed",
    JobStatus.REJECTED: "Rejected",
    JobStatus.TIMED_OUT: "Timed out",
    JobStatus.CANCELLED: "Cancelled",
}


def describe(job: GenerationJob) -> dict[str, Any]:
    """What a page shows about a job, JSON-able (the owner's own data only)."""
    p = params(job)
    refunded = job.cost if job.refund_entry_id is not None else 0
    return {
        "id": job.id,
        "feature": job.feature,
        "model": job.model,
        "status": str(job.status),
        "status_label": STATUS_LABELS.get(job.status, str(job.status)),
        "active": job.status in ACTIVE,
        "progress": 100 if job.status == JobStatus.SUCCEEDED else int(job.progress or 0),
        "cost": job.cost,
        "unlimited": job.unlimited,
        "refunded": refunded,
        "error": job.error,
        "prompt": p.get("prompt") or p.get("text") or "",
        "output_mime": job.output_mime,
        "has_output": bool(job.output_path),
        "output_count": job.output_count if job.output_path else 0,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


# ------------------------------------------------------------------ endings


def _finish(
    session: Session, job_id: int, status: str, error: str | None
) -> tuple[GenerationJob, bool]:
    """End a job that is not ended yet and refund its debit. (job, changed)."""
    job = _lock_job(session, job_id)
    if job is None:
        raise JobNotFound()
    if job.status in TERMINAL:
        return job, False
    now = clock.now()
    job.status = status
    job.error = (error or "")[:MAX_ERROR_CHARS] or None
    job.finished_at = now
    job.updated_at = now
    job.lease_until = None
    if job.debit_entry_id is not None and job.refund_entry_id is None:
        result = ledger.refund(session, job.debit_entry_id, idempotency_key=f"refund:gen:{job.id}")
        job.refund_entry_id = result.entry_id
    session.add(job)
    session.flush()
    notifications.announce(session, job.account_id, notifications.JOB)
    return job, True


def fail(session: Session, job_id: int, status: str, error: str | None) -> GenerationJob:
    """Record a failure (failed / rejected / timed_out) and return the credits, once.

    A job already ended is returned unchanged: a late or repeated report
    neither refunds again nor overwrites a success.
    """
    if status not in FAILURE_STATUSES:
        raise ValueError(f"fail() takes one of {', '.join(FAILURE_STATUSES)}, not {status!r}")
    job, _changed = _finish(session, job_id, status, error)
    return job


def cancel(session: Session, account_id: int, job_id: object) -> GenerationJob:
    """The owner cancels a job that has not started; its credits come back."""
    jid = _check_id(job_id)
    job = _lock_job(session, jid)
    if job is None or job.account_id != account_id:
        raise JobNotFound()
    if job.status == JobStatus.RUNNING:
        raise CannotCancel("This generation has already started and can no longer be cancelled.")
    if job.status != JobStatus.QUEUED:
        raise CannotCancel("This generation has already ended.")
    job, _changed = _finish(session, jid, JobStatus.CANCELLED, "Cancelled by you.")
    return job


def succeed(
    session: Session, job_id: int, output_path: str, mime: str, *, output_count: int = 1
) -> GenerationJob:
    """Record the result (`output_count` files, the first at output_path). A job that already
    ended (timed out meanwhile, say) keeps its ending: its credits were returned, so it does
    not become a success."""
    job = _lock_job(session, job_id)
    if job is None:
        raise JobNotFound()
    if job.status in TERMINAL:
        return job
    now = clock.now()
    job.status = JobStatus.SUCCEEDED
    job.progress = 100
    job.output_path = str(output_path)
    job.output_mime = mime
    job.output_count = max(1, int(output_count))
    job.error = None
    job.finished_at = now
    job.updated_at = now
    job.lease_until = None
    session.add(job)
    session.flush()
    notifications.announce(session, job.account_id, notifications.JOB)
    return job


def sweep(session: Session, now: datetime | None = None) -> list[GenerationJob]:
    """Stop every unfinished job past its deadline (timed_out + refund); returns them."""
    now = now or clock.now()
    ids = session.exec(
        select(GenerationJob.id)
        .where(GenerationJob.status.in_(ACTIVE), GenerationJob.deadline_at <= now)
        .order_by(GenerationJob.id)
    ).all()
    stopped = []
    for jid in ids:
        job, changed = _finish(session, jid, JobStatus.TIMED_OUT, TIMEOUT_MESSAGE)
        if changed:
            stopped.append(job)
    return stopped


# ------------------------------------------------------------------ worker side


def claimable_ids(
    session: Session, now: datetime | None = None, limit: int = 10, *, provider: str | None = None
) -> list[int]:
    """Queued jobs, and running ones whose worker stopped renewing its lease,
    oldest first. With `provider`, only jobs meant for it: a job's prediction id
    only means something to the provider that issued it."""
    now = now or clock.now()
    conditions = [] if provider is None else [GenerationJob.provider == provider]
    return list(
        session.exec(
            select(GenerationJob.id)
            .where(
                *conditions,
                GenerationJob.deadline_at > now,
                or_(
                    GenerationJob.status == JobStatus.QUEUED,
                    (GenerationJob.status == JobStatus.RUNNING)
                    & (or_(GenerationJob.lease_until.is_(None), GenerationJob.lease_until < now)),
                ),
            )
            .order_by(GenerationJob.id)
            .limit(limit)
        ).all()
    )


def claim(
    session: Session,
    job_id: int,
    worker_id: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> GenerationJob | None:
    """Take a job for this worker with one conditional UPDATE; None when another
    worker got it first (or it was cancelled/ended meanwhile)."""
    taken = claim_many(session, [job_id], worker_id, lease_seconds=lease_seconds, now=now)
    return taken[0] if taken else None


def claim_many(
    session: Session,
    job_ids: list[int],
    worker_id: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> list[GenerationJob]:
    """Take the jobs of `job_ids` that are still claimable, for this worker, with one
    conditional UPDATE (a job another worker got first, or that was cancelled or ended
    meanwhile, is left out) and one read of the rows taken, oldest first. A worker woken by a
    burst of submissions claims them all in two statements, not two per job."""
    if not job_ids:
        return []
    now = now or clock.now()
    taken = session.exec(
        update(GenerationJob)
        .where(
            GenerationJob.id.in_(job_ids),
            GenerationJob.deadline_at > now,
            or_(
                GenerationJob.status == JobStatus.QUEUED,
                (GenerationJob.status == JobStatus.RUNNING)
                & (or_(GenerationJob.lease_until.is_(None), GenerationJob.lease_until < now)),
            ),
        )
        .values(
            status=JobStatus.RUNNING,
            worker_id=worker_id,
            lease_until=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(GenerationJob.started_at, now),
            updated_at=now,
        )
        .returning(GenerationJob.id)
        .execution_options(synchronize_session=False)
    ).all()
    ids = sorted(row[0] for row in taken)
    if not ids:
        return []
    jobs = list(
        session.exec(
            select(GenerationJob)
            .where(GenerationJob.id.in_(ids))
            .order_by(GenerationJob.id)
            .execution_options(populate_existing=True)
        ).all()
    )
    for account_id in {job.account_id for job in jobs}:
        notifications.announce(session, account_id, notifications.JOB)
    return jobs


def mark_running(
    session: Session, job_id: int, provider_job_id: str, *, worker_id: str | None = None
) -> bool:
    """Remember the provider's id for a job this worker holds (so a restart can poll it)."""
    stmt = update(GenerationJob).where(
        GenerationJob.id == job_id, GenerationJob.status == JobStatus.RUNNING
    )
    if worker_id is not None:
        stmt = stmt.where(GenerationJob.worker_id == worker_id)
    result = session.exec(
        stmt.values(
            provider_job_id=str(provider_job_id)[:128], updated_at=clock.now()
        ).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def report_progress(
    session: Session,
    job_id: int,
    progress: int,
    *,
    worker_id: str | None = None,
    lease_seconds: float | None = None,
    account_id: int | None = None,
    previous: int | None = None,
) -> bool:
    """Store progress (0-99 while running; it never goes back) and renew the lease.
    False when the job is no longer this worker's running job. With `account_id`, the
    owner's tabs hear of it when the progress moved past `previous` (a lease renewal alone
    changes nothing they show)."""
    try:
        value = int(progress)
    except (TypeError, ValueError):
        value = 0
    value = max(0, min(99, value))
    now = clock.now()
    values: dict[str, Any] = {
        "progress": _greatest(GenerationJob.progress, value),
        "updated_at": now,
    }
    if lease_seconds is not None:
        values["lease_until"] = now + timedelta(seconds=lease_seconds)
    stmt = update(GenerationJob).where(
        GenerationJob.id == job_id, GenerationJob.status == JobStatus.RUNNING
    )
    if worker_id is not None:
        stmt = stmt.where(GenerationJob.worker_id == worker_id)
    result = session.exec(stmt.values(**values).execution_options(synchronize_session=False))
    if result.rowcount == 1 and account_id is not None and (previous is None or value > previous):
        notifications.announce(session, account_id, notifications.JOB)
    return result.rowcount == 1


def report_progress_many(
    session: Session,
    reports: list[tuple[int, int, int, int | None]],
    *,
    worker_id: str,
    lease_seconds: float,
) -> set[int]:
    """report_progress for many jobs of one worker at once (the worker batches them):
    `reports` holds (job id, account id, progress, progress last reported). One UPDATE
    statement run for all (executemany) and one read of which are still this worker's running
    jobs; returns their ids. Owners hear of the jobs whose progress moved."""
    if not reports:
        return set()
    now = clock.now()
    rows = [
        {"job_id": job_id, "value": _progress_value(progress)}
        for job_id, _account, progress, _previous in reports
    ]
    value = bindparam("value", type_=Integer)
    stmt = (
        update(GenerationJob.__table__)
        .where(
            GenerationJob.__table__.c.id == bindparam("job_id"),
            GenerationJob.__table__.c.status == JobStatus.RUNNING,
            GenerationJob.__table__.c.worker_id == worker_id,
        )
        .values(
            progress=case(
                (GenerationJob.__table__.c.progress > value, GenerationJob.__table__.c.progress),
                else_=value,
            ),
            updated_at=now,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
    )
    session.connection().execute(stmt, rows)
    ids = [job_id for job_id, *_rest in reports]
    ours = set(
        session.exec(
            select(GenerationJob.id).where(
                GenerationJob.id.in_(ids),
                GenerationJob.status == JobStatus.RUNNING,
                GenerationJob.worker_id == worker_id,
            )
        ).all()
    )
    for job_id, account_id, progress, previous in reports:
        if job_id in ours and (previous is None or _progress_value(progress) > previous):
            notifications.announce(session, account_id, notifications.JOB)
    return ours


def _progress_value(progress: object) -> int:
    value = 0
    if isinstance(progress, (int, float)):
        value = int(progress)
    elif isinstance(progress, str):
        try:
            value = int(progress)
        except ValueError:
            value = 0
    return max(0, min(99, value))


def _greatest(column: InstrumentedAttribute[int], value: int) -> ColumnElement[int]:
    # Portable max(column, value): SQLite has no GREATEST, PostgreSQL's max() is an aggregate.
    return case((column > value, column), else_=value)
