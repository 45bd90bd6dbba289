"""What staff do about the queues: Stripe webhook deliveries, the email
outbox and generation jobs; and signing an account out everywhere.

Every action checks the role (billing/staff_roles.py), is idempotent, writes
an audit row and returns a sentence saying what it did:
- process again a *failed* webhook delivery: the stored event (its signature
  was checked when it arrived) goes through the same handler as a live one;
  an event that is processed already is left alone ("nothing to do");
- send again: a pending email that failed is tried now (when SMTP is set up);
  a sent one is queued once more as a copy (keyed on the request, so a double
  click queues one copy);
- fail and refund a *stuck* generation (queued or running, and past its
  deadline or its worker's lease, or not updated for STUCK_AFTER): it ends as
  failed and its credits come back through the ledger, once;
- sign out everywhere: every live login of the account is revoked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from sqlalchemy import select
from sqlmodel import Session

from workroom_app.billing import accounts, audit, clock, receipts, staff
from workroom_app.billing.payments.stripe import StripeGateway
from workroom_app.billing.staff import StaffError
from workroom_app.billing.staff_roles import Permission
from workroom_app.billing.stripe_webhooks import HANDLERS, PROCESSED, WebhookProcessor
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs
from workroom_app.models import (
    Account,
    AuthSession,
    GenerationJob,
    JobStatus,
    OutboxEmail,
    WebhookEvent,
)

STUCK_AFTER = timedelta(minutes=10)
LIVE_JOB_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
MAX_LIST = 100


@dataclass(frozen=True)
class ActionResult:
    done: bool  # False: nothing needed doing (already done, or refused softly)
    message: str


def _actor(session: Session, actor_id: int) -> Account:
    """The staff member again, in the session that records their action."""
    actor = session.get(Account, actor_id)
    if actor is None:  # accounts are never deleted
        raise StaffError("Your account was not found.")
    return actor


@overload
def _aware(value: datetime) -> datetime: ...


@overload
def _aware(value: None) -> None: ...


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# ------------------------------------------------------------------ listing


def list_webhooks(
    session: Session, actor_id: int, *, outcome: str | None = None, limit: int = 50
) -> list[WebhookEvent]:
    staff.require_staff(session, actor_id)
    stmt = (
        select(WebhookEvent)
        .order_by(WebhookEvent.received_at.desc(), WebhookEvent.id)
        .limit(min(limit, MAX_LIST))
    )
    if outcome == "unprocessed":
        stmt = stmt.where(WebhookEvent.outcome.is_(None))
    elif outcome:
        stmt = stmt.where(WebhookEvent.outcome == outcome)
    return list(session.execute(stmt).scalars())


def list_emails(
    session: Session,
    actor_id: int,
    *,
    status: str | None = None,
    account_id: int | None = None,
    failed_only: bool = False,
    limit: int = 50,
) -> list[OutboxEmail]:
    staff.require_staff(session, actor_id)
    stmt = select(OutboxEmail).order_by(OutboxEmail.id.desc()).limit(min(limit, MAX_LIST))
    if status:
        stmt = stmt.where(OutboxEmail.status == status)
    if failed_only:
        stmt = stmt.where(OutboxEmail.last_error.is_not(None), OutboxEmail.status != "sent")
    if account_id is not None:
        stmt = stmt.where(OutboxEmail.account_id == account_id)
    return list(session.execute(stmt).scalars())


def is_stuck(job: GenerationJob, now: datetime) -> bool:
    if job.status not in LIVE_JOB_STATUSES:
        return False
    deadline, lease, updated = (
        _aware(job.deadline_at),
        _aware(job.lease_until),
        _aware(job.updated_at),
    )
    return (
        (deadline is not None and deadline < now)
        or (job.status == JobStatus.RUNNING and lease is not None and lease < now)
        or (updated is not None and updated < now - STUCK_AFTER)
    )


def list_jobs(
    session: Session,
    actor_id: int,
    *,
    status: str | None = None,
    feature: str | None = None,
    provider: str | None = None,
    account_id: int | None = None,
    stuck_only: bool = False,
    limit: int = 50,
) -> list[GenerationJob]:
    staff.require_staff(session, actor_id)
    stmt = (
        select(GenerationJob)
        .order_by(GenerationJob.id.desc())
        .limit(min(limit, MAX_LIST) * (5 if stuck_only else 1))
    )
    if status:
        stmt = stmt.where(GenerationJob.status == status)
    if feature:
        stmt = stmt.where(GenerationJob.feature == feature)
    if provider:
        stmt = stmt.where(GenerationJob.provider == provider)
    if account_id is not None:
        stmt = stmt.where(GenerationJob.account_id == account_id)
    if stuck_only:
        stmt = stmt.where(GenerationJob.status.in_(LIVE_JOB_STATUSES))
    rows = list(session.execute(stmt).scalars())
    if stuck_only:
        now = clock.now()
        rows = [j for j in rows if is_stuck(j, now)][:limit]
    return rows


def job_timeline(job: GenerationJob) -> list[tuple[str, str]]:
    """(when, what) steps of a job, oldest first: what staff read before acting."""
    steps = [
        (
            job.created_at,
            f"submitted: {job.feature} / {job.model}, {job.cost:,} credits"
            + (" (unlimited)" if job.unlimited else ""),
        )
    ]
    if job.started_at:
        steps.append(
            (
                job.started_at,
                f"started on {job.provider}"
                + (f" as {job.provider_job_id}" if job.provider_job_id else "")
                + (f" by worker {job.worker_id}" if job.worker_id else ""),
            )
        )
    if job.status in LIVE_JOB_STATUSES:
        steps.append(
            (
                job.updated_at,
                f"last update: {job.status}, {job.progress}%"
                + (
                    f", lease until {staff.format_time(job.lease_until)}" if job.lease_until else ""
                ),
            )
        )
    steps.append((job.deadline_at, "deadline"))
    if job.finished_at:
        steps.append(
            (job.finished_at, f"ended {job.status}" + (f": {job.error}" if job.error else ""))
        )
    if job.refund_entry_id:
        steps.append(
            (
                job.finished_at or job.updated_at,
                f"credits refunded (ledger row {job.refund_entry_id})",
            )
        )
    return [
        (staff.format_time(when), what) for when, what in sorted(steps, key=lambda s: _aware(s[0]))
    ]


# ------------------------------------------------------------------ actions


def replay_webhook(
    engine: Any, actor_id: int, event_id: object, *, gateway: Any = None
) -> ActionResult:
    """Process a failed Stripe delivery again (stored payload, same handler)."""

    if not isinstance(event_id, str) or not 0 < len(event_id) <= 128:
        raise StaffError("That webhook event was not found.")
    with read_session(engine) as session:
        actor = staff.require_staff(session, actor_id, Permission.REPLAY_WEBHOOK)
        row = session.get(WebhookEvent, event_id)
        if row is None:
            raise StaffError("That webhook event was not found.")
        outcome, event_type, raw = row.outcome, row.type, row.payload
    if outcome in ("processed", "ignored"):
        result = ActionResult(
            False, f"{event_type} {event_id} was already {outcome}; nothing to do."
        )
    else:
        handler = HANDLERS.get(event_type)
        try:
            if gateway is None:
                gateway = StripeGateway()
            processor = WebhookProcessor(engine, gateway, secret="replay")
            if handler is None:
                answer = processor._finish(event_id, event_type, raw, None, "ignored")
            else:
                state = handler.fetch(gateway, json.loads(raw)["data"]["object"])
                answer = processor._finish(event_id, event_type, raw, state, PROCESSED)
        except Exception as exc:  # noqa: BLE001  (Stripe unreachable, bad payload: say so, keep it failed)
            answer = None
            error = f"{exc.__class__.__name__}: {exc}"
        if answer is None:
            result = ActionResult(
                False, f"Processing {event_type} {event_id} failed again: {error}"
            )
        elif answer.outcome in ("processed", "ignored"):
            result = ActionResult(
                True, f"Processed {event_type} {event_id} again: {answer.outcome}."
            )
        elif answer.outcome == "duplicate":
            result = ActionResult(
                False, f"{event_type} {event_id} was processed meanwhile; nothing to do."
            )
        else:
            result = ActionResult(
                False, f"Processing {event_type} {event_id} failed again: {answer.error}"
            )
    with write_session(engine) as session:
        audit.record(
            session,
            _actor(session, actor.id),
            audit.REPLAY_WEBHOOK,
            target=f"webhook:{event_id}",
            result=audit.DONE
            if result.done
            else (audit.REPEAT if "nothing to do" in result.message else audit.FAILED),
            detail=result.message,
        )
    return result


def resend_email(
    engine: Any, actor_id: int, email_id: object, *, request_id: object, settings: Any = None
) -> ActionResult:
    key = staff.check_request_id(request_id)
    with write_session(engine) as session:
        actor = staff.require_staff(session, actor_id, Permission.RESEND_EMAIL)
        email = session.get(OutboxEmail, staff.check_id(email_id, "email"))
        if email is None:
            raise StaffError("That email was not found.")
        if email.status == receipts.SENT:
            dedupe = f"resend:{email.id}:{key}"[:200]
            if session.execute(
                select(OutboxEmail.id).where(OutboxEmail.dedupe_key == dedupe)
            ).first():
                result = ActionResult(
                    False, f"A copy of email {email.id} is already queued; nothing more to do."
                )
            else:
                session.add(
                    OutboxEmail(
                        account_id=email.account_id,
                        to_address=email.to_address,
                        subject=email.subject,
                        body_text=email.body_text,
                        attachment_name=email.attachment_name,
                        attachment=email.attachment,
                        invoice_id=email.invoice_id,
                        dedupe_key=dedupe,
                        status=receipts.PENDING,
                        created_at=clock.now(),
                    )
                )
                result = ActionResult(
                    True, f"Queued a copy of \u201c{email.subject}\u201d to {email.to_address}."
                )
            audit.record(
                session,
                actor,
                audit.RESEND_EMAIL,
                account_id=email.account_id,
                target=f"email:{email.id}",
                request_key=dedupe,
                result=audit.DONE if result.done else audit.REPEAT,
                detail=result.message,
            )
            return result
        pending_id, to_address = email.id, email.to_address
        actor_pk, account_id = actor.id, email.account_id
    # Still pending (it failed before, or is waiting): try it now.
    if not receipts.smtp_configured(settings):
        result = ActionResult(
            False,
            f"Email {pending_id} is queued; it goes out once SMTP is configured (WORKROOM_SMTP_HOST).",
        )
    else:
        report = receipts.send_one(engine, pending_id, settings=settings)
        result = ActionResult(
            report is None,
            f"Sent email {pending_id} to {to_address}."
            if report is None
            else f"Sending email {pending_id} failed again: {report}",
        )
    with write_session(engine) as session:
        audit.record(
            session,
            _actor(session, actor_pk),
            audit.RESEND_EMAIL,
            account_id=account_id,
            target=f"email:{pending_id}",
            result=audit.DONE if result.done else audit.FAILED,
            detail=result.message,
        )
    return result


def fail_stuck_job(engine: Any, actor_id: int, job_id: object, *, reason: object) -> ActionResult:
    with write_session(engine) as session:
        actor = staff.require_staff(session, actor_id, Permission.FAIL_JOB)
        text = staff.check_reason(reason)
        job = session.get(GenerationJob, staff.check_id(job_id, "job"))
        if job is None:
            raise StaffError("That generation was not found.")
        if job.status not in LIVE_JOB_STATUSES:
            result = ActionResult(
                False, f"Generation {job.id} already ended ({job.status}); nothing to do."
            )
            audit.record(
                session,
                actor,
                audit.FAIL_JOB,
                account_id=job.account_id,
                target=f"job:{job.id}",
                reason=text,
                result=audit.REPEAT,
                detail=result.message,
            )
            return result
        if not is_stuck(job, clock.now()):
            raise StaffError(
                "This generation is still making progress; only a stuck one can be failed."
            )
        ended = jobs.fail(session, job.id, JobStatus.FAILED, f"Stopped by staff: {text}")
        refunded = f"; {ended.cost:,} credits refunded" if ended.refund_entry_id else ""
        result = ActionResult(True, f"Generation {ended.id} failed by staff{refunded}.")
        audit.record(
            session,
            actor,
            audit.FAIL_JOB,
            account_id=ended.account_id,
            target=f"job:{ended.id}",
            reason=text,
            result=audit.DONE,
            detail=result.message,
        )
        return result


def list_sessions(session: Session, actor_id: int, account_id: int) -> list[AuthSession]:
    staff.require_staff(session, actor_id)
    return list(
        session.execute(
            select(AuthSession)
            .where(AuthSession.account_id == account_id)
            .order_by(AuthSession.id.desc())
            .limit(20)
        ).scalars()
    )


def sign_out_everywhere(
    session: Session, actor_id: int, account_id: object, *, reason: object
) -> ActionResult:
    actor = staff.require_staff(session, actor_id, Permission.REVOKE_SESSIONS)
    target = staff.target_account(session, account_id)
    text = staff.check_reason(reason)
    count = accounts.revoke_all_logins(session, target.id)
    result = ActionResult(
        count > 0,
        f"Signed {target.email} out of {count} session{'s' if count != 1 else ''}."
        if count
        else f"{target.email} had no live sessions; nothing to do.",
    )
    audit.record(
        session,
        actor,
        audit.REVOKE_SESSIONS,
        account_id=target.id,
        reason=text,
        result=audit.DONE if count else audit.REPEAT,
        detail=result.message,
    )
    return result
