"""Generated files, uploads and the price list, over plain HTTP.

GET /api/media/jobs/{job_id}            the output of one of the signed-in user's jobs
                                        (?download=1 sends it as an attachment)
GET /api/media/jobs/{job_id}/{n}        its file number n (1..output_count: N images are N files)
GET /api/media/uploads/{ref}            one of the signed-in user's uploads (face swap / lip sync)
GET /api/catalog.json                   catalog_for_browser(): what assets/quote.js prices from

Media is authenticated by the login cookie only, looked up server-side. Anything that is not the
caller's own file is a 404 exactly like a file that does not exist (never a 403): ids and upload
names reveal nothing. Staff (any staff role: they read everything) may open any job's result, so
the Reports queue can show what a user reported; uploads stay their owner's only. Paths are built from the job row or a strictly matched upload name and
checked to stay inside settings.media_dir, so no request can name a path.

The catalog is served rather than compiled into the page so that a price change staff make (and
the server reloads) reaches the Generate button on the next page load, not the next deploy.
"""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from workroom_app.billing import catalog
from workroom_app.db import read_session
from workroom_app.generation import jobs, uploads
from workroom_app.generation.errors import GenerationError
from workroom_app.http.caller import caller_account_and_staff
from workroom_app.models import GenerationJob, JobStatus
from workroom_app.settings import get_settings

JOB_MEDIA_ROUTE = "/api/media/jobs"
UPLOAD_MEDIA_ROUTE = "/api/media/uploads"
CATALOG_ROUTE = "/api/catalog.json"
NOT_FOUND = "Not found."
_MAX_ID_DIGITS = 18


def job_media_url(job_id: int, *, download: bool = False, index: int | None = None) -> str:
    path = f"{JOB_MEDIA_ROUTE}/{int(job_id)}" + (f"/{int(index)}" if index is not None else "")
    return path + ("?download=1" if download else "")


def upload_media_url(ref: str) -> str:
    return f"{UPLOAD_MEDIA_ROUTE}/{ref}"


def _not_found() -> Response:
    return PlainTextResponse(NOT_FOUND, status_code=404, headers={"Cache-Control": "no-store"})


def _inside(base: Path, path: Path) -> Path | None:
    base = base.resolve()
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return None
    if resolved != base and base not in resolved.parents:
        return None
    return resolved if resolved.is_file() else None


def _job_file(
    account_id: int, job_id: int, index: int = 1, *, staff: bool = False
) -> tuple[Path, str, str] | None:
    with read_session() as session:
        try:
            if staff:
                job = session.get(GenerationJob, job_id) if job_id < 2**31 else None
                if job is None:
                    return None
            else:
                job = jobs.get_job(session, account_id, job_id)
        except GenerationError:
            return None
        if job.status != JobStatus.SUCCEEDED or not job.output_path:
            return None
        media_dir = get_settings().media_dir
        candidate = jobs.output_file(job, Path(media_dir), index)
        path = _inside(Path(media_dir), candidate) if candidate is not None else None
        if path is None:
            return None
        number = f"-{index}" if (job.output_count or 1) > 1 else ""
        name = f"workroom-{job.feature.replace('_', '-')}-{job.id}{number}{path.suffix}"
        # Every file of a job is of the kind of its first (the worker refuses a mixed answer);
        # the type still follows the file's own name so a PNG is never sent as something else.
        mime = job.output_mime or "application/octet-stream"
        if index > 1:
            mime = uploads.FORMATS.get(path.suffix.lstrip(".").lower(), (None, mime))[1]
        return path, mime, name


def _upload_file(account_id: int, ref: str) -> tuple[Path, str] | None:
    try:
        path = uploads.path_of(account_id, ref)
        mime = uploads.mime_of(ref)
    except (GenerationError, KeyError, ValueError):
        return None
    resolved = _inside(uploads.account_dir(account_id), path)
    return (resolved, mime) if resolved is not None else None


async def job_media(request: Request) -> Response:
    raw = request.path_params.get("job_id", "")
    if not raw.isdigit() or len(raw) > _MAX_ID_DIGITS:
        return _not_found()
    raw_index = request.path_params.get("index", "1")
    if not raw_index.isdigit() or len(raw_index) > 3 or int(raw_index) < 1:
        return _not_found()
    caller = await caller_account_and_staff(request)
    if caller is None:
        return _not_found()
    account_id, is_staff = caller
    found = await run_in_threadpool(_job_file, account_id, int(raw), int(raw_index), staff=is_staff)
    if found is None:
        return _not_found()
    path, mime, name = found
    download = request.query_params.get("download") == "1"
    return FileResponse(
        path,
        media_type=mime,
        filename=name if download else None,
        content_disposition_type="attachment" if download else "inline",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


async def upload_media(request: Request) -> Response:
    ref = request.path_params.get("ref", "")
    if len(ref) > 64:
        return _not_found()
    caller = await caller_account_and_staff(request)
    if caller is None:
        return _not_found()
    found = await run_in_threadpool(_upload_file, caller[0], ref)
    if found is None:
        return _not_found()
    path, mime = found
    return FileResponse(
        path,
        media_type=mime,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


async def catalog_json(_request: Request) -> Response:
    return JSONResponse(catalog.catalog_for_browser(), headers={"Cache-Control": "no-cache"})


MEDIA_ROUTES: list[Route] = [
    Route(JOB_MEDIA_ROUTE + "/{job_id}", job_media, methods=["GET"]),
    Route(JOB_MEDIA_ROUTE + "/{job_id}/{index}", job_media, methods=["GET"]),
    Route(UPLOAD_MEDIA_ROUTE + "/{ref}", upload_media, methods=["GET"]),
    Route(CATALOG_ROUTE, catalog_json, methods=["GET"]),
]
