"""The Generation page's jobs and uploads, outside its Reflex state (state/generate.py uses them):
the plain values sent to the browser (JobView, UploadView, job_view) and the blocking work run off
the event loop (checking the form, submit, cancel, reading the job lists, storing an upload, the
messages for a file the browser refused)."""

from __future__ import annotations

import dataclasses
import json
import re
from os.path import basename
from typing import Any

from workroom_app.billing import accounts, catalog, formatting, ledger
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs, uploads
from workroom_app.generation.errors import (
    GenerationError,
    InvalidRequest,
    NotEnoughCredits,
    TooManyRunning,
)
from workroom_app.http.media_routes import job_media_url, upload_media_url
from workroom_app.models import Account

# What a Generate form may send, and the longest each value can legitimately be.
_FORM_LIMITS: dict[str, int] = {
    "feature": 16,
    "model": 64,
    "mode": 64,
    "resolution": 16,
    "duration": 8,
    "count": 8,
    "prompt": 2_000,
    "text": 5_000,
    "request_id": 64,
    "shown_cost": 16,
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
HISTORY_PAGE = 10

STATUS_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Done",
    "failed": "Failed",
    "rejected": "Rejected",
    "timed_out": "Timed out",
    "cancelled": "Cancelled",
}
FAILURE_STATUSES = frozenset({"failed", "rejected", "timed_out"})


@dataclasses.dataclass
class JobView:
    """One generation as the page shows it (plain values only: this is sent to the browser)."""

    id: int = 0
    feature: str = ""
    title: str = ""  # "Video · Veo 3 · 720p · 5 s"
    summary: str = ""  # the prompt or text, shortened
    status: str = ""
    status_label: str = ""
    progress: int = 0
    active: bool = False
    failed: bool = False
    can_cancel: bool = False
    cost: int = 0
    cost_text: str = ""  # "45 credits" | "Unlimited"
    refund_text: str = ""  # "45 credits returned" | ""
    refund_entry_id: int = 0  # its Refund row on Usage (0: none)
    refund_time_text: str = ""  # when the credits were returned, in the user's zone
    error: str = ""
    created_text: str = ""
    output_kind: str = ""  # image | video | audio | ""
    output_url: str = ""
    download_url: str = ""
    # Every file of the job (N images: N URLs); each downloads with "?download=1".
    output_urls: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class UploadView:
    role: str = ""
    name: str = ""
    kind: str = ""
    size_text: str = ""
    url: str = ""
    length_text: str = ""  # "4.0 s" for a clip or audio file, measured on the server
    seconds: int = 0  # whole seconds it is billed as (what the in-page price uses)


def credits_text(amount: int) -> str:
    return f"{amount:,} {'credit' if amount == 1 else 'credits'}"


def failure_toast(job: JobView) -> str:
    """The toast for a generation that ended with an error ("Generation failed · 45 credits returned")."""
    if job.cost > 0 and job.refund_text:
        return f"Generation failed · {credits_text(job.cost)} returned"
    return "Generation failed"


def _labels(feature: str, model: str) -> tuple[str, str]:
    try:
        feat = catalog.get_catalog().feature(feature)
    except catalog.UnknownFeature:  # a feature retired from the catalog still shows its key
        return feature.replace("_", " ").capitalize(), model
    try:
        return feat.label, feat.models[model].label
    except KeyError:
        return feat.label, model


def _shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_view(job: Any, tz_name: str = "UTC") -> JobView:
    """Build the browser's view of a GenerationJob row."""
    try:
        params = json.loads(job.params_json or "{}")
    except ValueError:
        params = {}
    feature_label, model_label = _labels(job.feature, job.model)
    parts = [feature_label, model_label]
    if params.get("resolution"):
        parts.append(str(params["resolution"]))
    if params.get("duration"):
        parts.append(f"{params['duration']} s")
    if params.get("count") and int(params.get("count") or 1) > 1:
        parts.append(f"× {params['count']}")
    summary = params.get("prompt") or params.get("text") or ""
    status = str(job.status)
    succeeded = status == "succeeded"
    mime = job.output_mime or ""
    kind = mime.split("/", 1)[0] if succeeded and mime else ""
    if mime in ("image/gif", "image/webp") and job.feature in ("video", "lip_sync"):
        kind = "image"

    created = formatting.format_datetime(job.created_at, tz_name) if job.created_at else ""
    refunded = job.refund_entry_id is not None
    return JobView(
        id=int(job.id),
        feature=job.feature,
        title=" · ".join(parts),
        summary=_shorten(str(summary)),
        status=status,
        status_label=STATUS_LABELS.get(status, status),
        progress=100 if succeeded else max(0, min(99, int(job.progress or 0))),
        active=status in ("queued", "running"),
        failed=status in FAILURE_STATUSES,
        can_cancel=status == "queued",
        cost=int(job.cost or 0),
        cost_text="Unlimited" if job.unlimited else credits_text(int(job.cost or 0)),
        refund_text=credits_text(int(job.cost)) + " returned" if refunded and job.cost else "",
        refund_entry_id=int(job.refund_entry_id) if refunded and job.cost else 0,
        refund_time_text=(
            formatting.format_datetime(job.finished_at, tz_name)
            if refunded and job.finished_at
            else ""
        ),
        error=job.error or "",
        created_text=created,
        output_kind=kind,
        output_url=job_media_url(job.id) if succeeded and job.output_path else "",
        download_url=job_media_url(job.id, download=True) if succeeded and job.output_path else "",
        output_urls=[job_media_url(job.id, index=i) for i in range(1, (job.output_count or 1) + 1)]
        if succeeded and job.output_path
        else [],
    )


def endings(
    seen_active: list[int], active: list[JobView], history: list[JobView]
) -> tuple[list[JobView], list[int]]:
    """(jobs a tab showed as running that have now ended, job ids it should keep watching).

    A job that left the active list but is not on the history page read with it stays watched
    until it shows up (it cannot be told apart from one not ended yet)."""
    still = {j.id for j in active}
    by_id = {j.id: j for j in history}
    ended = [
        by_id[jid]
        for jid in seen_active
        if jid not in still and jid in by_id and not by_id[jid].active
    ]
    done = {j.id for j in ended}
    watching = sorted(still | {jid for jid in seen_active if jid not in still and jid not in done})
    return ended, watching


# ------------------------------------------------------------ blocking work


def clean_form(form_data: object) -> tuple[dict[str, Any], str, int | None]:
    """(request for jobs.submit, request id, cost the button showed) from what the browser sent.

    Raises ValueError with a user-readable message. Unknown keys are ignored (a browser adds
    nothing we read), known ones must be short strings."""
    if not isinstance(form_data, dict):
        raise ValueError("Choose what to generate.")
    values: dict[str, str] = {}
    for key, limit in _FORM_LIMITS.items():
        value = form_data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ValueError(f"The {key.replace('_', ' ')} sent is not valid.")
        if len(value) > limit:
            if key in ("prompt", "text"):
                raise ValueError(f"The {key} is {len(value):,} characters; the limit is {limit:,}.")
            raise ValueError(f"The {key.replace('_', ' ')} sent is not valid.")
        values[key] = value
    feature = values.get("feature")
    if feature not in catalog.feature_labels():
        raise ValueError(catalog.choose_feature_message())
    request_id = values.pop("request_id", "")
    if not _REQUEST_ID.match(request_id):
        raise ValueError("This form is out of date; reload the page and try again.")
    shown = values.pop("shown_cost", None)
    shown_cost: int | None = None
    if shown is not None:
        if not shown.isdigit() or len(shown) > 9:
            raise ValueError("The cost shown is not valid; reload the page and try again.")
        shown_cost = int(shown)
    # Numbers stay text: the catalog reads plain digits and refuses "8.5", "1e9", " 8".
    request: dict[str, Any] = dict(values)
    return request, request_id, shown_cost


@dataclasses.dataclass
class SubmitOutcome:
    job: JobView | None = None
    balance: int = 0
    error: str = ""
    upgrade: bool = False


def submit_job(
    account_id: int,
    request: dict[str, Any],
    request_id: str,
    shown_cost: int | None,
    tz: str = "UTC",
) -> SubmitOutcome:
    """One write transaction: jobs.submit prices again, checks, debits and creates the job."""
    try:
        with write_session() as session:
            job = jobs.submit(
                session,
                account_id,
                request,
                client_request_id=request_id,
                shown_cost=shown_cost,
            )
            view = job_view(job, tz)
            balance = ledger.balance(session, account_id)
            return SubmitOutcome(job=view, balance=balance)
    except NotEnoughCredits as exc:
        return SubmitOutcome(error=exc.message, upgrade=True)
    except TooManyRunning as exc:
        return SubmitOutcome(error=exc.message, upgrade=True)
    except InvalidRequest as exc:
        return SubmitOutcome(error=exc.message, upgrade=bool(exc.required_plan))
    except GenerationError as exc:
        return SubmitOutcome(error=exc.message)


def cancel_job(account_id: int, job_id: object, tz: str = "UTC") -> tuple[JobView | None, int, str]:
    """(job, balance, error) after the owner cancels a queued job."""
    try:
        with write_session() as session:
            job = jobs.cancel(session, account_id, job_id)
            return job_view(job, tz), ledger.balance(session, account_id), ""
    except GenerationError as exc:
        return None, 0, exc.message


def read_jobs(
    account_id: int, before_id: int | None = None, tz: str | None = None
) -> tuple[list[JobView], list[JobView], bool, str]:
    """(active jobs, one history page, more pages?, timezone)."""
    with read_session() as session:
        if tz is None:
            account = session.get(Account, account_id)
            tz = (account.timezone if account else None) or "UTC"
        active = [job_view(j, tz) for j in jobs.active_jobs(session, account_id)]
        page = jobs.list_jobs(session, account_id, limit=HISTORY_PAGE + 1, before_id=before_id)
        more = len(page) > HISTORY_PAGE
        return active, [job_view(j, tz) for j in page[:HISTORY_PAGE]], more, tz


def store_upload(account_id: int, feature: str, role: str, data: bytes, filename: str):
    from workroom_app.generation import media  # noqa: PLC0415  (PyAV: loaded only to read media)

    with read_session() as session:
        plan_key = accounts.current_plan_key(session, account_id)
    stored = uploads.save_for_role(account_id, feature, role, data, plan_key=plan_key)
    size = (
        f"{stored.size / (1024 * 1024):.1f} MB"
        if stored.size >= 100 * 1024
        else f"{max(1, round(stored.size / 1024))} KB"
    )  # never "0 KB"
    name = _shorten(filename or stored.ref, 40)
    timed = bool(stored.seconds)
    return stored.ref, UploadView(
        role=role,
        name=name,
        kind=stored.kind,
        size_text=size,
        url=upload_media_url(stored.ref),
        length_text=media.seconds_text(stored.seconds) if timed else "",
        seconds=media.billed_seconds(stored.seconds) if timed else 0,
    )


def _role_texts(feature: str, role: str) -> tuple[str, str, tuple[str, ...]]:
    """(what the upload is, which types it takes, its kinds) for messages."""
    kinds = uploads.UPLOAD_ROLES.get(feature, {}).get(role, ())
    accepted = uploads.accept_text(kinds) if kinds else "a supported file"
    return uploads.ROLE_LABELS.get(role, "the file"), accepted, kinds


def choose_one_message(feature: str, role: str) -> str:
    label, accepted, _kinds = _role_texts(feature, role)
    return f"Choose one file for {label}: {accepted}."


def rejection_message(feature: str, role: str, rejected: object) -> str:
    """What is wrong with a file the browser's file picker refused before sending it (wrong type,
    too large, several files), and what to choose instead.

    The records come from the browser: only their file name and error codes are read, shortened,
    and used as text; nothing else is trusted or stored."""
    label, accepted, kinds = _role_texts(feature, role)
    record = (
        rejected[0]
        if isinstance(rejected, list) and rejected and isinstance(rejected[0], dict)
        else {}
    )
    file = record.get("file") if isinstance(record.get("file"), dict) else {}
    raw_name = file.get("path") or file.get("name") or ""
    name = _shorten(basename(raw_name.replace("\\", "/")), 60) if isinstance(raw_name, str) else ""
    errors = record.get("errors") if isinstance(record.get("errors"), list) else []
    codes = {
        e.get("code") for e in errors if isinstance(e, dict) and isinstance(e.get("code"), str)
    }
    quoted = f"“{name}”" if name else "That file"
    if isinstance(rejected, list) and len(rejected) > 1 or "too-many-files" in codes:
        return choose_one_message(feature, role)
    if "file-invalid-type" in codes:
        ext = name.rsplit(".", 1)[1].upper() if "." in name else ""
        kind = f" (.{ext})" if ext and len(ext) <= 8 and ext.isalnum() else ""
        return f"{quoted}{kind} is the wrong type for {label}. Choose {accepted}."
    if "file-too-large" in codes:
        limit = max((uploads.MAX_BYTES[k] for k in kinds), default=0)
        return f"{quoted} is larger than {uploads.size_text(limit)}, the limit for {label}. Choose a smaller file."
    return f"{quoted} cannot be used for {label}. Choose {accepted}."
