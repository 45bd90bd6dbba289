"""The Generation page state: submit, cancel, uploads, the user's jobs and history.

Thin on purpose: prices, limits, debits and refunds are generation/jobs.py and the ledger. The
cost on the Generate button is computed in the browser (assets/generate.js + quote.js); the
server never reads a price from the browser. `submit` takes the form's field values only, prices
them again in the same transaction that debits (jobs.submit), and refuses with the user-readable
message when it cannot run. The one number the browser may add, `shown_cost`, goes to
jobs.submit as a consent check: if the server's price differs from what the button showed (the
catalog changed under an open page) nothing is charged and the user is told the new price — it
is never used as the price.

Every public handler is callable by any browser with any arguments, so each one checks what it
gets (types, lengths, known keys) and changes nothing when the check fails.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from workroom_app import notifications
from workroom_app.generation import uploads
from workroom_app.generation.errors import GenerationError
from workroom_app.routes import LOGIN_ROUTE
from workroom_app.state.generate_jobs import (
    FAILURE_STATUSES,
    HISTORY_PAGE,
    STATUS_LABELS,
    JobView,
    SubmitOutcome,
    UploadView,
    cancel_job,
    choose_one_message,
    clean_form,
    credits_text,
    endings,
    failure_toast,
    job_view,
    read_jobs,
    rejection_message,
    store_upload,
    submit_job,
)
from workroom_app.state.session import SessionState

# The page's views and blocking work live in state/generate_jobs.py; their names stay
# importable from here.
__all__ = [
    "FAILURE_STATUSES",
    "HISTORY_PAGE",
    "RESULTS_KEPT",
    "STATUS_LABELS",
    "GenerateState",
    "JobView",
    "SubmitOutcome",
    "UploadView",
    "cancel_job",
    "choose_one_message",
    "clean_form",
    "credits_text",
    "endings",
    "failure_toast",
    "job_view",
    "read_jobs",
    "rejection_message",
    "store_upload",
    "submit_job",
]

RESULTS_KEPT = 4
_MAX_UPLOAD_READ = 50 * 1024 * 1024 + 1  # one byte past the largest limit: enough to refuse


# ------------------------------------------------------------------- state


class GenerateState(SessionState):
    error: str = ""
    error_upgrade: bool = False
    submitting: bool = False
    # Bumped after every answer to a submission: generate.js starts a new request id then, so a
    # double click sends one id twice (charged once) and the next generation gets a fresh one.
    submit_seq: int = 0
    active_jobs: list[JobView] = []
    results: list[JobView] = []
    history: list[JobView] = []
    history_has_older: bool = False
    history_has_newer: bool = False
    uploads: dict[str, UploadView] = {}
    upload_errors: dict[str, str] = {}

    _tz: str = "UTC"
    _history_cursors: list[int] = []  # before_id of every page above the current one
    _history_before: int | None = None
    _upload_refs: dict[str, str] = {}  # "feature:role" -> stored upload reference
    _seen_active: list[int] = []  # jobs this tab has shown as running (for the failure toast)

    # ------------------------------------------------------------- helpers

    def _apply_jobs(
        self, active: list[JobView], history: list[JobView] | None, more: bool | None
    ) -> list:
        """Show fresh job data; returns toasts for jobs this tab saw running that have ended."""
        ended, watching = endings(self._seen_active, active, history or [])
        toasts = []
        for job in ended:
            if job.failed:
                toasts.append(
                    rx.toast.error(failure_toast(job), description=job.error or None, duration=8000)
                )
            elif job.status == "succeeded":
                self.results = [job, *[r for r in self.results if r.id != job.id]][:RESULTS_KEPT]
        self._seen_active = watching
        self.active_jobs = active
        if history is not None:
            self.history = history
            self.history_has_older = bool(more)
        return toasts

    async def _load_jobs(self) -> list:
        account_id = self._account_id
        if account_id is None:
            return []
        before = self._history_before
        # The zone the page load's guard has just read: no second read of the account.
        active, history, more, tz = await asyncio.to_thread(
            read_jobs, account_id, before, self._timezone
        )
        self._tz = tz
        if before is not None:
            # Only the first page learns about endings; other pages keep what they show.
            self.active_jobs = active
            self.history = history
            self.history_has_older = more
            return []
        return self._apply_jobs(active, history, more)

    # -------------------------------------------------------------- events

    @rx.event
    async def load(self):
        """on_load of /generate: jobs, first history page. (The guard before it registers the tab for the live push.)"""
        if self._account_id is None:
            return None
        self.error = ""
        self.error_upgrade = False
        self.submitting = False
        self._history_before = None
        self._history_cursors = []
        self.history_has_newer = False
        self._seen_active = []
        await self._load_jobs()
        self._seen_active = [j.id for j in self.active_jobs]
        return None

    @rx.event
    async def submit(self, form_data: dict):
        """The Generate form. Takes field values only; the price is the server's."""
        if self._account_id is None:
            return rx.redirect(LOGIN_ROUTE)
        try:
            request, request_id, shown_cost = clean_form(form_data)
        except ValueError as exc:
            self.error = str(exc)
            self.error_upgrade = False
            self.submit_seq += 1
            return None
        feature = request["feature"]
        request_uploads = {}
        for role in uploads.UPLOAD_ROLES.get(feature, {}):
            ref = self._upload_refs.get(f"{feature}:{role}")
            if ref:
                request_uploads[role] = ref
        if feature in uploads.UPLOAD_ROLES:
            request["uploads"] = request_uploads
        self.submitting = True
        # This tab shows the outcome below: the live push need not send it back here.
        with notifications.acting_for_tab(self.router.session.client_token):
            outcome = await asyncio.to_thread(
                submit_job, self._account_id, request, request_id, shown_cost, self._tz
            )
        self.submitting = False
        self.submit_seq += 1
        if outcome.error:
            self.error = outcome.error
            self.error_upgrade = outcome.upgrade
            return None
        self.error = ""
        self.error_upgrade = False
        self._set_balance(outcome.balance)
        job = outcome.job
        if job is not None:
            if job.active and job.id not in {j.id for j in self.active_jobs}:
                self.active_jobs = [*self.active_jobs, job]
                self._seen_active = sorted({*self._seen_active, job.id})
            if self._history_before is None and job.id not in {h.id for h in self.history}:
                self.history = [job, *self.history][:HISTORY_PAGE]
        return None

    @rx.event
    async def cancel(self, job_id: int):
        """Cancel one of the user's queued jobs (after the confirmation dialog); refunds it."""
        if self._account_id is None:
            return rx.redirect(LOGIN_ROUTE)
        if isinstance(job_id, bool) or not isinstance(job_id, (int, str)):
            return rx.toast.error("That generation was not found.")
        with notifications.acting_for_tab(self.router.session.client_token):  # shown below
            job, balance, error = await asyncio.to_thread(
                cancel_job, self._account_id, job_id, self._tz
            )
        if error or job is None:
            return rx.toast.error(error or "That generation was not found.")
        self._set_balance(balance)
        self._seen_active = [j for j in self._seen_active if j != job.id]
        await self._load_jobs()
        message = "Generation cancelled"
        if job.refund_text:
            message += f" · {job.refund_text}"
        return rx.toast.success(message)

    @rx.event
    async def history_older(self):
        if self._account_id is None or not self.history_has_older or not self.history:
            return
        self._history_cursors = [*self._history_cursors, self._history_before or 0]
        self._history_before = self.history[-1].id
        self.history_has_newer = True
        await self._load_jobs()

    @rx.event
    async def history_newer(self):
        if self._account_id is None or not self._history_cursors:
            return
        cursors = list(self._history_cursors)
        previous = cursors.pop()
        self._history_cursors = cursors
        self._history_before = previous or None
        self.history_has_newer = bool(cursors)
        await self._load_jobs()

    @rx.event
    def dismiss_error(self):
        self.error = ""
        self.error_upgrade = False

    async def _store(self, feature: str, role: str, files: list[rx.UploadFile]):
        if self._account_id is None:
            return rx.redirect(LOGIN_ROUTE)
        errors = {k: v for k, v in self.upload_errors.items() if k != role}
        if not isinstance(files, list) or len(files) != 1:
            if isinstance(files, list) and not files and role in self.upload_errors:
                # The picker refused the file: the rejected_* event (before or after this one)
                # says what is wrong with it; keep that rather than a vaguer message.
                return None
            self.upload_errors = {**errors, role: choose_one_message(feature, role)}
            return None
        upload = files[0]
        data = await upload.read(_MAX_UPLOAD_READ) if hasattr(upload, "read") else b""
        filename = getattr(upload, "filename", "") or getattr(upload, "name", "") or ""
        try:
            ref, view = await asyncio.to_thread(
                store_upload, self._account_id, feature, role, data, str(filename)[:200]
            )
        except GenerationError as exc:
            self.upload_errors = {**errors, role: exc.message}
            return None
        self.upload_errors = errors
        self._upload_refs = {**self._upload_refs, f"{feature}:{role}": ref}
        self.uploads = {**self.uploads, role: view}
        return None

    @rx.event
    async def upload_face(self, files: list[rx.UploadFile]):
        return await self._store("face_swap", "face", files)

    @rx.event
    async def upload_target(self, files: list[rx.UploadFile]):
        return await self._store("face_swap", "target", files)

    @rx.event
    async def upload_source(self, files: list[rx.UploadFile]):
        return await self._store("lip_sync", "source", files)

    @rx.event
    async def upload_audio(self, files: list[rx.UploadFile]):
        return await self._store("lip_sync", "audio", files)

    def _rejected(self, feature: str, role: str, rejected: object):
        if self._account_id is None:
            return rx.redirect(LOGIN_ROUTE)
        self.upload_errors = {
            **self.upload_errors,
            role: rejection_message(feature, role, rejected),
        }
        return None

    # The browser's file picker checks type and size before uploading; what it refuses arrives here.
    @rx.event
    def rejected_face(self, rejected: list[dict]):
        return self._rejected("face_swap", "face", rejected)

    @rx.event
    def rejected_target(self, rejected: list[dict]):
        return self._rejected("face_swap", "target", rejected)

    @rx.event
    def rejected_source(self, rejected: list[dict]):
        return self._rejected("lip_sync", "source", rejected)

    @rx.event
    def rejected_audio(self, rejected: list[dict]):
        return self._rejected("lip_sync", "audio", rejected)
