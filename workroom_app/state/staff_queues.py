"""Staff queues (/staff/queues): Stripe webhook deliveries, the email outbox
and generation jobs, with "process again", "send again" and "fail and
refund". The work is billing/staff_queues.py.

The browser may send filter forms and the id of a row this server listed in
this tab (anything else is refused). Each action re-checks the role on the
server (billing), is idempotent there, and answers with what it did.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, clock, staff, staff_queues, staff_roles
from workroom_app.billing.staff import NotAllowed, StaffError, StaffOnly
from workroom_app.billing.staff_roles import Permission
from workroom_app.db import read_session
from workroom_app.models import Account, GenerationJob, JobStatus
from workroom_app.routes import LANDING_ROUTE, LOGIN_ROUTE
from workroom_app.state.session import SessionState

NOT_STAFF = "The staff dashboard is for staff members only."
NOT_LISTED = "That row is not in the list. Refresh and try again."
WEBHOOK_OUTCOMES = ("", "failed", "unprocessed", "processed", "ignored")
EMAIL_FILTERS = ("", "failed", "pending", "sent")
JOB_STATUSES = ("", "stuck", *[s.value for s in JobStatus])


def _text(form: Any, name: str, allowed: tuple[str, ...] | None = None, max_len: int = 64) -> str:
    if not isinstance(form, dict):
        raise StaffError("The form could not be read. Reload the page and try again.")
    value = form.get(name, "") or ""
    if not isinstance(value, str) or len(value) > max_len:
        raise StaffError("The form could not be read. Reload the page and try again.")
    value = value.strip()
    if allowed is not None and value not in allowed:
        raise StaffError("Choose one of the listed filters.")
    return value


def _engine():
    # Looked up on each call (tests point the app at their own database).
    return db.get_engine()


def _role_of(account_id: int) -> str | None:
    with read_session() as session:
        account = session.get(Account, account_id)
        return account.role if account else None


def _read_webhooks(actor: int, outcome: str) -> list[dict[str, str]]:
    with read_session() as session:
        return [
            {
                "id": e.id,
                "type": e.type,
                "outcome": e.outcome or "unprocessed",
                "error": e.error or "",
                "received": staff.format_time(e.received_at),
                "payload": e.payload[:2000],
            }
            for e in staff_queues.list_webhooks(session, actor, outcome=outcome or None)
        ]


def _read_emails(actor: int, which: str) -> list[dict[str, str]]:
    with read_session() as session:
        rows = staff_queues.list_emails(
            session,
            actor,
            status=which if which in ("pending", "sent") else None,
            failed_only=which == "failed",
        )
        return [
            {
                "id": str(e.id),
                "to": e.to_address,
                "subject": e.subject,
                "status": e.status,
                "error": e.last_error or "",
                "attempts": str(e.attempts),
                "created": staff.format_time(e.created_at),
            }
            for e in rows
        ]


def _read_jobs(
    actor: int, status: str, feature: str, provider: str, account: str
) -> list[dict[str, str]]:
    account_id = staff.check_id(account, "account") if account else None
    with read_session() as session:
        rows = staff_queues.list_jobs(
            session,
            actor,
            status=None if status in ("", "stuck") else status,
            feature=feature or None,
            provider=provider or None,
            account_id=account_id,
            stuck_only=status == "stuck",
        )
        now = clock.now()
        return [
            {
                "id": str(j.id),
                "account": str(j.account_id),
                "feature": j.feature,
                "model": j.model,
                "provider": j.provider,
                "status": j.status,
                "cost": f"{j.cost:,}",
                "created": staff.format_time(j.created_at),
                "stuck": "yes" if staff_queues.is_stuck(j, now) else "",
            }
            for j in rows
        ]


def _timeline(actor: int, job_id: int) -> list[dict[str, str]]:
    with read_session() as session:
        staff.require_staff(session, actor)
        job = session.get(GenerationJob, job_id)
        return (
            []
            if job is None
            else [{"when": w, "what": t} for w, t in staff_queues.job_timeline(job)]
        )


class StaffQueuesState(SessionState):
    allowed: bool = False
    can_replay: bool = False
    can_resend: bool = False
    can_fail_job: bool = False
    error: str = ""
    last_result: str = ""

    webhook_filter: str = "failed"
    webhooks: list[dict[str, str]] = []
    email_filter: str = ""
    emails: list[dict[str, str]] = []
    jobs: list[dict[str, str]] = []
    job_id: str = ""
    job_timeline: list[dict[str, str]] = []
    job_stuck: bool = False

    _webhook_ids: list[str] = []
    _email_keys: dict[str, str] = {}
    _job_ids: list[int] = []
    _job_filter: dict[str, str] = {}

    async def _actor(self) -> int | None:
        if self._account_id is None or not await self._reload_account() or not self.is_staff:
            self.allowed = False
            self.webhooks, self.emails, self.jobs, self.job_timeline = [], [], [], []
            return None
        role = await asyncio.to_thread(_role_of, self._account_id)
        self.can_replay = staff_roles.can(role, Permission.REPLAY_WEBHOOK)
        self.can_resend = staff_roles.can(role, Permission.RESEND_EMAIL)
        self.can_fail_job = staff_roles.can(role, Permission.FAIL_JOB)
        return self._account_id

    def _refusal(self):
        if self._account_id is None:
            return rx.redirect(LOGIN_ROUTE, replace=True)
        return [rx.toast.error(NOT_STAFF), rx.redirect(LANDING_ROUTE, replace=True)]

    async def _refresh(self, actor: int) -> None:
        self.webhooks = await asyncio.to_thread(_read_webhooks, actor, self.webhook_filter)
        self._webhook_ids = [w["id"] for w in self.webhooks]
        self.emails = await asyncio.to_thread(_read_emails, actor, self.email_filter)
        # One request id per listed email: a double click queues one copy.
        self._email_keys = {
            e["id"]: self._email_keys.get(e["id"]) or secrets.token_urlsafe(12) for e in self.emails
        }
        f = self._job_filter
        self.jobs = await asyncio.to_thread(
            _read_jobs,
            actor,
            f.get("status", "stuck"),
            f.get("feature", ""),
            f.get("provider", ""),
            f.get("account", ""),
        )
        self._job_ids = [int(j["id"]) for j in self.jobs]

    async def load(self):
        self.allowed = False
        if self._account_id is None:
            return None
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        # Links from the overview: /staff/queues?status=&feature=&provider=&account=
        params = self.router.url.query_parameters
        try:
            self._job_filter = {
                "status": _text(params, "status", JOB_STATUSES) if "status" in params else "stuck",
                "feature": _text(params, "feature", max_len=32),
                "provider": _text(params, "provider", max_len=16),
                "account": _text(params, "account", max_len=19),
            }
        except StaffError as exc:
            self._job_filter = {"status": "stuck"}
            self.error = str(exc)
        try:
            await self._refresh(actor)
        except StaffOnly:
            return self._refusal()
        self.allowed = True
        return None

    async def filter_webhooks(self, form_data: dict):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            self.webhook_filter = _text(form_data, "outcome", WEBHOOK_OUTCOMES)
            await self._refresh(actor)
            self.error = ""
        except StaffError as exc:
            self.error = str(exc)
        return None

    async def filter_emails(self, form_data: dict):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            self.email_filter = _text(form_data, "which", EMAIL_FILTERS)
            await self._refresh(actor)
            self.error = ""
        except StaffError as exc:
            self.error = str(exc)
        return None

    async def filter_jobs(self, form_data: dict):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            self._job_filter = {
                "status": _text(form_data, "status", JOB_STATUSES),
                "feature": _text(form_data, "feature", max_len=32),
                "provider": _text(form_data, "provider", max_len=16),
                "account": _text(form_data, "account", max_len=19),
            }
            await self._refresh(actor)
            self.error = ""
        except StaffError as exc:
            self.error = str(exc)
        return None

    async def _refused(self, actor: int, action: str, message: str):
        await asyncio.to_thread(audit.record_refusal, _engine(), actor, action, message)
        return rx.toast.error(message)

    async def replay(self, event_id: str):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if not self.can_replay:
            return await self._refused(
                actor, audit.REPLAY_WEBHOOK, staff_roles.REFUSALS[Permission.REPLAY_WEBHOOK]
            )
        if not isinstance(event_id, str) or event_id not in self._webhook_ids:
            return rx.toast.error(NOT_LISTED)
        try:
            result = await asyncio.to_thread(
                staff_queues.replay_webhook, _engine(), actor, event_id
            )
        except NotAllowed as exc:
            return await self._refused(actor, audit.REPLAY_WEBHOOK, str(exc))
        except StaffError as exc:
            return rx.toast.error(str(exc))
        self.last_result = result.message
        await self._refresh(actor)
        return rx.toast.success(result.message) if result.done else rx.toast.info(result.message)

    async def resend(self, email_id: str):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if not self.can_resend:
            return await self._refused(
                actor, audit.RESEND_EMAIL, staff_roles.REFUSALS[Permission.RESEND_EMAIL]
            )
        key = self._email_keys.get(email_id) if isinstance(email_id, str) else None
        if key is None:
            return rx.toast.error(NOT_LISTED)
        try:
            result = await asyncio.to_thread(
                staff_queues.resend_email, _engine(), actor, email_id, request_id=key
            )
        except NotAllowed as exc:
            return await self._refused(actor, audit.RESEND_EMAIL, str(exc))
        except StaffError as exc:
            return rx.toast.error(str(exc))
        self.last_result = result.message
        await self._refresh(actor)
        return rx.toast.success(result.message) if result.done else rx.toast.info(result.message)

    async def show_job(self, job_id: str):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            wanted = staff.check_id(job_id, "job")
        except StaffError as exc:
            return rx.toast.error(str(exc))
        if wanted not in self._job_ids:
            return rx.toast.error(NOT_LISTED)
        self.job_id = str(wanted)
        self.job_timeline = await asyncio.to_thread(_timeline, actor, wanted)
        self.job_stuck = any(j["id"] == self.job_id and j["stuck"] == "yes" for j in self.jobs)
        return None

    async def fail_job(self, form_data: dict):
        """Fail and refund the job whose timeline is open (kept on the server)."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if not self.can_fail_job:
            return await self._refused(
                actor, audit.FAIL_JOB, staff_roles.REFUSALS[Permission.FAIL_JOB]
            )
        if not self.job_id or int(self.job_id) not in self._job_ids:
            return rx.toast.error("Open a generation's timeline first.")
        try:
            reason = _text(form_data, "reason", max_len=500)
            result = await asyncio.to_thread(
                staff_queues.fail_stuck_job, _engine(), actor, int(self.job_id), reason=reason
            )
        except NotAllowed as exc:
            return await self._refused(actor, audit.FAIL_JOB, str(exc))
        except StaffError as exc:
            return rx.toast.error(str(exc))
        self.last_result = result.message
        self.job_timeline = await asyncio.to_thread(_timeline, actor, int(self.job_id))
        self.job_stuck = False
        await self._refresh(actor)
        return rx.toast.success(result.message) if result.done else rx.toast.info(result.message)
