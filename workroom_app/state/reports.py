""" "Report a broken result" on the Generate page: one dialog for any finished
job. The browser sends a job id and a reason; generation/reports.py checks
that the job is the signed-in user's, finished less than 24 hours ago and not
reported or refunded yet, and refuses with a clear message otherwise."""

from __future__ import annotations

import asyncio
import logging

import reflex as rx
from sqlmodel import select

from workroom_app.db import read_session, write_session
from workroom_app.generation import reports
from workroom_app.generation.errors import GenerationError
from workroom_app.generation.reports import ReportError
from workroom_app.models import ResultReport
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)

STATUS_TEXT = {
    "refunded": "Reported: credits returned",
    "pending": "Reported: waiting for staff",
    "declined": "Reported: declined",
}


def read_reports(account_id: int) -> dict[str, str]:
    """job id (as text) -> what its card says about its report."""
    with read_session() as session:
        rows = session.exec(
            select(ResultReport)
            .where(ResultReport.account_id == account_id)
            .order_by(ResultReport.id.desc())
            .limit(200)
        ).all()
    out = {}
    for r in rows:
        text = STATUS_TEXT.get(r.status, r.status)
        if r.status == "declined" and r.staff_note:
            text += f" ({r.staff_note})"
        out[str(r.job_id)] = text
    return out


def send_report(account_id: int, job_id: object, reason: object):
    with write_session() as session:
        return reports.report(session, account_id, job_id, reason)


class ReportState(SessionState):
    report_status: dict[str, str] = {}
    dialog_open: bool = False
    job_id: int = 0
    job_title: str = ""
    error: str = ""
    busy: bool = False

    async def load(self):
        if self._account_id is None:
            return
        self.report_status = await asyncio.to_thread(read_reports, self._account_id)

    def open_for(self, job_id: int, title: str):
        """Open the dialog; the id is only remembered here, checked on Send."""
        if isinstance(job_id, bool) or not isinstance(job_id, int) or not isinstance(title, str):
            return
        self.job_id = job_id
        self.job_title = title[:200]
        self.error = ""
        self.dialog_open = True

    def set_dialog_open(self, value: bool):
        if value is False:
            self.dialog_open = False

    async def submit(self, form_data: dict):
        account_id = self._account_id
        if account_id is None or self.busy or not self.dialog_open:
            return
        reason = form_data.get("reason") if isinstance(form_data, dict) else None
        self.busy = True
        yield
        try:
            outcome = await asyncio.to_thread(send_report, account_id, self.job_id, reason)
        except (ReportError, GenerationError) as exc:
            self.error = str(exc)
            return
        except Exception:  # noqa: BLE001
            log.exception("report failed")
            self.error = "Something went wrong; nothing was sent. Please try again."
            return
        finally:
            self.busy = False
        self.dialog_open = False
        self.report_status = await asyncio.to_thread(read_reports, account_id)
        await self._reload_account()
        yield rx.toast.success(outcome.message, duration=8000)
