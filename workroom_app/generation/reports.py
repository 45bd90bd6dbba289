""" "Report a broken result": a user can report a finished generation as broken
within 24 hours, with a reason.

Rules, in the words the UI uses (README "Decisions"):
- "Your first 3 reports each calendar month are refunded at once" (K is the
  catalog's broken_result_refunds_per_month); the refund is a Refund row whose
  reason names the report.
- "After that, staff review your report and accept it (your credits come
  back) or decline it with a note you can read here."
- One report per result; a result whose credits were already returned (a
  failure refund, an earlier report) refunds nothing more: the ledger refunds a
  debit at most once.
- Unlimited results cost nothing, so there is nothing to refund: they cannot
  be reported here.
Every function takes the caller's session and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from workroom_app.billing import clock, invoices, ledger
from workroom_app.billing.catalog import get_catalog
from workroom_app.billing.periods import as_utc
from workroom_app.generation import jobs
from workroom_app.models import Account, GenerationJob, JobStatus, ReportStatus, ResultReport, Role

REPORT_WINDOW = timedelta(hours=24)
MIN_REASON = 3
MAX_REASON = 500
MAX_NOTE = 1000


class ReportError(Exception):
    """A report that cannot be made or decided; the message is user-readable."""


@dataclass(frozen=True)
class ReportOutcome:
    report_id: int
    status: str
    message: str
    credits_returned: int = 0


def _check_reason(reason: object) -> str:
    if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
        raise ReportError("Tell us what is wrong with the result (a few words).")
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise ReportError(f"Keep the reason under {MAX_REASON} characters.")
    return reason


def _as_utc(value: datetime) -> datetime:
    return as_utc(value)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def auto_refunds_this_month(session: Session, account_id: int, now: datetime | None = None) -> int:
    now = now or clock.now()
    return int(
        session.exec(
            select(func.count()).where(
                ResultReport.account_id == account_id,
                ResultReport.auto_refunded.is_(True),
                ResultReport.created_at >= month_start(now),
            )
        ).one()
    )


def _refund(session: Session, job: GenerationJob, report: ResultReport) -> int:
    if job.debit_entry_id is None:  # report() refuses these; a decision cannot add credits
        raise ReportError("This result cost no credits (Unlimited): there is nothing to refund.")
    result = ledger.refund(
        session,
        job.debit_entry_id,
        idempotency_key=f"refund:report:{report.id}",
        reason=f"Broken result reported (report #{report.id}): {report.reason}"[:2000],
    )
    if not result.created:
        return 0  # already returned (a failure refund or an earlier report): nothing more
    job.refund_entry_id = result.entry_id
    session.add(job)
    report.refund_entry_id = result.entry_id
    return result.amount


def report(session: Session, account_id: int, job_id: object, reason: object) -> ReportOutcome:
    """Report the account's finished job as broken (see the module rules)."""
    reason = _check_reason(reason)
    # Job ids are 32-bit integers: anything else is no job (PostgreSQL refuses a bigger one outright).
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id < 2**31:
        raise jobs.JobNotFound()
    invoices.lock_account(session, account_id)  # one report at a time per account: the count holds
    job = jobs.get_job(session, account_id, job_id)  # another user's job reads as not found
    if job.status != JobStatus.SUCCEEDED:
        raise ReportError(
            "Only a finished result can be reported. Failed generations are refunded on their own."
        )
    now = clock.now()
    if job.finished_at is None or now - _as_utc(job.finished_at) > REPORT_WINDOW:
        raise ReportError("Results can be reported within 24 hours of finishing.")
    if session.exec(select(ResultReport).where(ResultReport.job_id == job.id)).first() is not None:
        raise ReportError("You already reported this result.")
    if job.unlimited or job.cost <= 0 or job.debit_entry_id is None:
        raise ReportError("This result cost no credits (Unlimited): there is nothing to refund.")
    if job.refund_entry_id is not None:
        raise ReportError("This generation's credits were already returned.")
    allowance = get_catalog().broken_result_refunds_per_month
    auto = auto_refunds_this_month(session, account_id, now) < allowance
    row = ResultReport(
        job_id=job.id,
        account_id=account_id,
        reason=reason,
        status=ReportStatus.REFUNDED.value if auto else ReportStatus.PENDING.value,
        auto_refunded=auto,
        created_at=now,
        decided_at=now if auto else None,
    )
    session.add(row)
    session.flush()
    if not auto:
        return ReportOutcome(
            row.id,
            row.status,
            f"Thanks. You have used this month's {allowance} instant refunds, so staff will review this "
            "report and answer here.",
        )
    returned = _refund(session, job, row)
    session.add(row)
    return ReportOutcome(
        row.id, row.status, f"Thanks. {returned:,} credits were returned to your balance.", returned
    )


def decide(
    session: Session, report_id: object, staff_id: int, *, accept: bool, note: object
) -> ReportOutcome:
    """Staff accept (refund) or decline (with a note the user sees) a pending report."""
    staff = session.get(Account, staff_id)
    if staff is None or staff.role != Role.STAFF:
        raise ReportError("Only staff can decide reports.")
    if isinstance(report_id, bool) or not isinstance(report_id, int) or report_id <= 0:
        raise ReportError("No such report.")
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE:
        raise ReportError(f"Write a note for the user (up to {MAX_NOTE} characters).")
    row = session.get(ResultReport, report_id)
    if row is None:
        raise ReportError("No such report.")
    invoices.lock_account(session, row.account_id)
    session.refresh(row)
    if row.status != ReportStatus.PENDING:
        raise ReportError("This report was already decided.")
    if row.account_id == staff_id:
        raise ReportError("Staff cannot decide their own reports; another staff member must.")
    row.staff_note = note.strip()
    row.decided_by = staff_id
    row.decided_at = clock.now()
    returned = 0
    if accept:
        job = session.get(GenerationJob, row.job_id)
        if job is None:  # the foreign key keeps the job; only a hand-edited database lacks it
            raise jobs.JobNotFound()
        returned = _refund(session, job, row)
        row.status = ReportStatus.REFUNDED.value
    else:
        row.status = ReportStatus.DECLINED.value
    session.add(row)
    return ReportOutcome(
        row.id, row.status, "Accepted: credits returned." if accept else "Declined.", returned
    )


def pending(session: Session, limit: int = 100) -> list[ResultReport]:
    return list(
        session.exec(
            select(ResultReport)
            .where(ResultReport.status == ReportStatus.PENDING.value)
            .order_by(ResultReport.id)
            .limit(limit)
        )
    )
