"""Staff "Reports" queue (/staff/reports): broken-result reports beyond the
month's free allowance wait here; support and admin accept (the credits come
back, once) or decline with a note the user reads on the job's card. The
work is generation/reports.py (decide, staff_queue).

The browser may send a filter (waiting, accepted, declined), the id of a
report this server listed in this tab, and the decline form's note; anything
else is refused with a message and changes nothing. Every event re-checks
that the caller is staff and the role again inside the decision's
transaction; a staff member's refused decision is written to the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, staff, staff_roles
from workroom_app.billing.staff import NotAllowed, StaffError, StaffOnly
from workroom_app.billing.staff_roles import Permission
from workroom_app.db import read_session, write_session
from workroom_app.generation import reports
from workroom_app.http.media_routes import job_media_url
from workroom_app.models import Account
from workroom_app.routes import LANDING_ROUTE, LOGIN_ROUTE, STAFF_ACCOUNTS_ROUTE
from workroom_app.state.session import SessionState

logger = logging.getLogger(__name__)

NOT_STAFF = "The staff dashboard is for staff members only."
NOT_LISTED = "That report is not in the list. Refresh and try again."
FILTER_LABELS = {
    reports.WAITING: "Waiting",
    reports.ACCEPTED: "Accepted",
    reports.DECLINED: "Declined",
}


def _role_of(account_id: int) -> str | None:
    with read_session() as session:
        account = session.get(Account, account_id)
        return account.role if account is not None else None


def _row(r: reports.QueueRow) -> dict[str, str]:
    return {
        "id": str(r.id),
        "job": f"#{r.job_id} · {r.feature} / {r.model}",
        "job_id": str(r.job_id),
        "email": r.email,
        "account_href": f"{STAFF_ACCOUNTS_ROUTE}?" + urlencode({"q": r.email}),
        "cost": f"{r.cost:,} credits",
        "reason": r.reason,
        "reported": staff.format_time(r.created_at),
        "result_href": job_media_url(r.job_id),
        "decided": staff.format_time(r.decided_at) if r.decided_at else "",
        "decided_by": r.decided_by,
        "note": r.note,
        "returned": f"{r.credits_returned:,} credits returned" if r.credits_returned else "",
    }


def _read(actor_id: int, which: str) -> list[dict[str, str]]:
    with read_session() as session:
        return [_row(r) for r in reports.staff_queue(session, actor_id, which)]


def _decide(actor_id: int, report_id: int, accept: bool, note: str) -> reports.ReportOutcome:
    with write_session() as session:
        return reports.decide(session, report_id, actor_id, accept=accept, note=note)


def _refused(actor_id: int, message: str, report_id: int | None) -> None:
    audit.record_refusal(
        db.get_engine(),
        actor_id,
        audit.DECIDE_REPORT,
        message,
        target=f"report:{report_id}" if report_id is not None else None,
    )


class StaffReportsState(SessionState):
    allowed: bool = False
    can_decide: bool = False
    which: str = reports.WAITING
    rows: list[dict[str, str]] = []
    error: str = ""
    # The report whose decline form is open (display only; the id is kept below).
    decline_label: str = ""
    decline_open: bool = False
    busy: bool = False

    # Server-side only: the ids listed in this tab and the report being declined.
    _listed: list[int] = []
    _decline_id: int | None = None

    async def _actor(self) -> int | None:
        """The signed-in staff member's id, re-checked now; None (and the list
        emptied) for anybody else."""
        if self._account_id is None or not await self._reload_account() or not self.is_staff:
            self.allowed = False
            self.rows, self._listed = [], []
            self._close_decline()
            return None
        role = await asyncio.to_thread(_role_of, self._account_id)
        self.can_decide = staff_roles.can(role, Permission.DECIDE_REPORTS)
        return self._account_id

    def _refusal(self) -> list:
        if self._account_id is None:
            return [rx.redirect(LOGIN_ROUTE, replace=True)]
        return [rx.toast.error(NOT_STAFF), rx.redirect(LANDING_ROUTE, replace=True)]

    def _close_decline(self) -> None:
        self.decline_open = False
        self.decline_label = ""
        self._decline_id = None

    async def _refresh(self, actor: int) -> None:
        self.rows = await asyncio.to_thread(_read, actor, self.which)
        self._listed = [int(r["id"]) for r in self.rows]

    def _listed_id(self, report_id: Any) -> int:
        """A report id this tab was shown; StaffError for anything else."""
        if isinstance(report_id, bool) or not isinstance(report_id, str | int):
            raise StaffError(NOT_LISTED)
        text = str(report_id).strip()
        if not text.isdigit() or len(text) > 10 or int(text) not in self._listed:
            raise StaffError(NOT_LISTED)
        return int(text)

    # -------------------------------------------------------------- events
    async def load(self):
        """on_load: staff only; the waiting reports (or ?show=accepted|declined)."""
        self.allowed = False
        self._close_decline()
        if self._account_id is None:
            return None
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        wanted = self.router.url.query_parameters.get("show", reports.WAITING)
        self.which = wanted if wanted in reports.QUEUE_FILTERS else reports.WAITING
        try:
            await self._refresh(actor)
        except StaffOnly:
            return self._refusal()
        self.allowed = True
        self.error = ""
        return None

    async def show(self, which: str):
        """Switch the filter: waiting, accepted or declined."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if not isinstance(which, str) or which not in reports.QUEUE_FILTERS:
            return rx.toast.error("Choose waiting, accepted or declined.")
        self.which = which
        self._close_decline()
        try:
            await self._refresh(actor)
        except StaffOnly:
            return self._refusal()
        return None

    async def accept(self, report_id: str):
        """Refund the reported result's credits (once: a second accept does nothing)."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if self.busy:
            return None
        try:
            rid = self._listed_id(report_id)
        except StaffError as exc:
            return rx.toast.error(str(exc))
        if not self.can_decide:
            message = staff_roles.REFUSALS[Permission.DECIDE_REPORTS]
            await asyncio.to_thread(_refused, actor, message, rid)
            return rx.toast.error(message)
        return await self._decide(actor, rid, accept=True, note="")

    async def open_decline(self, report_id: str):
        """Open the decline form for one listed report (the note is required)."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            rid = self._listed_id(report_id)
        except StaffError as exc:
            return rx.toast.error(str(exc))
        if not self.can_decide:
            message = staff_roles.REFUSALS[Permission.DECIDE_REPORTS]
            await asyncio.to_thread(_refused, actor, message, rid)
            return rx.toast.error(message)
        row = next((r for r in self.rows if r["id"] == str(rid)), None)
        self._decline_id = rid
        self.decline_label = f"Report #{rid}: {row['job']} by {row['email']}" if row else ""
        self.decline_open = True
        self.error = ""
        return None

    async def close_decline(self):
        if not self.busy:
            self._close_decline()
            self.error = ""

    async def decline(self, form_data: dict):
        """Decline the report whose form is open, with the note the user reads."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        rid = self._decline_id
        if rid is None or not self.decline_open or self.busy:
            return rx.toast.error("Open the decline form first.")
        note = form_data.get("note", "") if isinstance(form_data, dict) else None
        if not isinstance(note, str) or len(note) > reports.MAX_NOTE:
            self.error = f"Write a note for the user (up to {reports.MAX_NOTE:,} characters)."
            return None
        return await self._decide(actor, rid, accept=False, note=note)

    async def _decide(self, actor: int, rid: int, *, accept: bool, note: str):
        self.busy = True
        try:
            outcome = await asyncio.to_thread(_decide, actor, rid, accept, note)
        except StaffOnly:
            self.busy = False
            return self._refusal()
        except (StaffError, reports.ReportError) as exc:
            self.busy = False
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(_refused, actor, str(exc), rid)
            if self.decline_open:
                self.error = str(exc)
            await self._refresh(actor)
            return rx.toast.error(str(exc))
        except Exception:
            logger.exception("staff report decision failed")
            self.busy = False
            self.error = "Something went wrong on our side. Nothing was changed; please try again."
            return rx.toast.error(self.error)
        self.busy = False
        self.error = ""
        self._close_decline()
        await self._refresh(actor)
        if not outcome.created:
            return rx.toast.info(outcome.message)
        return rx.toast.success(outcome.message)
