""" "Report a broken result": a user can report a finished generation as broken
within 24 hours, with a reason.

Rules, in the words the UI uses (README "Decisions"):
- "Your first 3 reports each calendar month are refunded at once" (K is the
  catalog's broken_result_refunds_per_month); the refund is a Refund row whose
  reason names the report.
- "After that, staff review your report and accept it (your credits come
  back) or decline it with a note you can read here." Staff do it on
  /staff/reports (support and admin; ``decide``), or with
  ``workroom reports accept|decline``; each decision writes a staff audit row.
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
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import audit, clock, invoices, ledger, staff
from workroom_app.billing.catalog import get_catalog
from workroom_app.billing.periods import as_utc as _as_utc
from workroom_app.billing.staff import NotAllowed
from workroom_app.billing.staff_roles import Permission
from workroom_app.generation import jobs
from workroom_app.models import (
    Account,
    GenerationJob,
    JobStatus,
    LedgerEntry,
    ReportStatus,
    ResultReport,
)

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
    created: bool = True  # False: the same decision was already made; nothing changed


def _check_reason(reason: object) -> str:
    if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
        raise ReportError("Tell us what is wrong with the result (a few words).")
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise ReportError(f"Keep the reason under {MAX_REASON} characters.")
    return reason


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
    # The account's other open tabs show the report's status on the job's card.
    notifications.announce(session, account_id, notifications.REPORT)
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


def _check_note(note: object, *, required: bool) -> str:
    if note is None and not required:
        return ""
    if not isinstance(note, str) or len(note) > MAX_NOTE or (required and not note.strip()):
        raise ReportError(f"Write a note for the user (up to {MAX_NOTE:,} characters).")
    return note.strip()


def _check_report_id(report_id: object) -> int:
    # Ids are 32-bit integers: anything else is no report (PostgreSQL refuses a bigger one).
    if isinstance(report_id, bool) or not isinstance(report_id, int) or not 0 < report_id < 2**31:
        raise ReportError("No such report.")
    return report_id


def decide(
    session: Session, report_id: object, staff_id: object, *, accept: bool, note: object
) -> ReportOutcome:
    """Staff accept (refund) or decline (with a note the user sees) a report that
    waits for them. Support and admin may (billing/staff_roles.py); never on their
    own report. The same decision again changes nothing (``created`` False), so a
    double click refunds once; the opposite decision on a decided report is refused.
    Writes one staff audit row in the caller's transaction."""
    actor = staff.require_staff(session, staff_id, Permission.DECIDE_REPORTS)
    rid = _check_report_id(report_id)
    text = _check_note(note, required=not accept)
    row = session.get(ResultReport, rid)
    if row is None:
        raise ReportError("No such report.")
    invoices.lock_account(session, row.account_id)  # one decision at a time: refunds once
    session.refresh(row)
    if row.auto_refunded:
        raise ReportError(
            "This report was refunded at once (monthly allowance); nothing to decide."
        )
    if row.account_id == actor.id:
        raise NotAllowed("Staff cannot decide their own reports; another staff member must.")
    wanted = ReportStatus.REFUNDED.value if accept else ReportStatus.DECLINED.value
    verb = "accepted" if accept else "declined"
    if row.status == wanted:
        message = f"Report #{row.id} was already {verb}; nothing more to do."
        audit.record(
            session,
            actor,
            audit.DECIDE_REPORT,
            account_id=row.account_id,
            target=f"report:{row.id}",
            reason=text or None,
            result=audit.REPEAT,
            detail=message,
        )
        return ReportOutcome(row.id, row.status, message, 0, created=False)
    if row.status != ReportStatus.PENDING:
        done = "accepted" if row.status == ReportStatus.REFUNDED else "declined"
        raise ReportError(f"This report was already {done}.")
    row.staff_note = text or None
    row.decided_by = actor.id
    row.decided_at = clock.now()
    returned = 0
    if accept:
        job = session.get(GenerationJob, row.job_id)
        if job is None:  # the foreign key keeps the job; only a hand-edited database lacks it
            raise jobs.JobNotFound()
        returned = _refund(session, job, row)
        row.status = ReportStatus.REFUNDED.value
        message = (
            f"Accepted report #{row.id}: {returned:,} credits returned."
            if returned
            else f"Accepted report #{row.id}: its credits had already been returned, "
            "nothing more refunded."
        )
    else:
        row.status = ReportStatus.DECLINED.value
        message = f"Declined report #{row.id}; the user sees your note."
    session.add(row)
    # The user's open tabs re-read their job cards (the report's status) on commit.
    notifications.announce(session, row.account_id, notifications.JOB, notifications.REPORT)
    audit.record(
        session,
        actor,
        audit.DECIDE_REPORT,
        account_id=row.account_id,
        target=f"report:{row.id}",
        reason=text or None,
        result=audit.DONE,
        detail=message,
    )
    return ReportOutcome(row.id, row.status, message, returned)


# ------------------------------------------------------------- the staff queue

# What the staff queue shows: reports beyond the monthly allowance (the ones
# refunded at once needed nobody), by where they stand.
WAITING, ACCEPTED, DECLINED = "waiting", "accepted", "declined"
QUEUE_FILTERS = (WAITING, ACCEPTED, DECLINED)
_QUEUE_STATUS = {
    WAITING: ReportStatus.PENDING.value,
    ACCEPTED: ReportStatus.REFUNDED.value,
    DECLINED: ReportStatus.DECLINED.value,
}
QUEUE_LIMIT = 100


@dataclass(frozen=True)
class QueueRow:
    id: int
    job_id: int
    account_id: int
    email: str
    feature: str
    model: str
    cost: int
    reason: str
    state: str  # waiting, accepted, declined
    created_at: datetime
    finished_at: datetime | None
    decided_at: datetime | None
    decided_by: str  # the deciding staff member's email ("" while waiting)
    note: str
    credits_returned: int  # what the refund row gave back (accepted only)


def staff_queue(
    session: Session, actor_id: object, which: str = WAITING, limit: int = QUEUE_LIMIT
) -> list[QueueRow]:
    """Reports that needed staff, oldest first while waiting (first come, first
    served) and newest first once decided. Any staff role may read them."""
    staff.require_staff(session, actor_id)
    if which not in QUEUE_FILTERS:
        raise ReportError("Choose waiting, accepted or declined.")
    decider = aliased(Account)
    refund = aliased(LedgerEntry)
    order = (
        (ResultReport.created_at, ResultReport.id)
        if which == WAITING
        else (ResultReport.decided_at.desc(), ResultReport.id.desc())
    )
    rows = session.execute(
        core_select(ResultReport, GenerationJob, Account.email, decider.email, refund.amount)
        .join(GenerationJob, GenerationJob.id == ResultReport.job_id)
        .join(Account, Account.id == ResultReport.account_id)
        .outerjoin(decider, decider.id == ResultReport.decided_by)
        .outerjoin(refund, refund.id == ResultReport.refund_entry_id)
        .where(
            ResultReport.status == _QUEUE_STATUS[which],
            ResultReport.auto_refunded.is_(False),
        )
        .order_by(*order)
        .limit(max(1, min(limit, QUEUE_LIMIT)))
    ).all()
    return [
        QueueRow(
            id=r.id,
            job_id=job.id,
            account_id=r.account_id,
            email=email,
            feature=job.feature,
            model=job.model,
            cost=job.cost,
            reason=r.reason,
            state=which,
            created_at=_as_utc(r.created_at),
            finished_at=_as_utc(job.finished_at) if job.finished_at else None,
            decided_at=_as_utc(r.decided_at) if r.decided_at else None,
            decided_by=decided_by or "",
            note=r.staff_note or "",
            credits_returned=int(refunded or 0),
        )
        for r, job, email, decided_by, refunded in rows
    ]


def pending(session: Session, limit: int = 100) -> list[ResultReport]:
    return list(
        session.exec(
            select(ResultReport)
            .where(ResultReport.status == ReportStatus.PENDING.value)
            .order_by(ResultReport.id)
            .limit(limit)
        )
    )
