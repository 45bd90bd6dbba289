"""The staff audit trail: one append-only row per staff action.

Who (the staff member, with the email and role they had then), when, what
(the action), on which account, about what else (``target``: an invoice, a
webhook event, a job...), the written reason, and the result:

- ``done``: the action changed something;
- ``repeat``: the same request again (idempotency key); nothing changed;
- ``refused``: the role may not do it, or the arguments were refused;
- ``failed``: it was allowed but did not work (e.g. the gateway said no).

A successful action writes its row in the action's own transaction, so the
row exists exactly when the change does. A refusal is written in a separate
transaction by ``record_refusal`` (the action's own rolled back). The table
refuses UPDATE and DELETE (triggers, alembic 0007_staff).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from workroom_app.billing import clock, staff_roles
from workroom_app.db import write_session
from workroom_app.models import Account, StaffAudit

DONE = "done"
REPEAT = "repeat"
REFUSED = "refused"
FAILED = "failed"
RESULTS = (DONE, REPEAT, REFUSED, FAILED)

# Action names (what the audit list shows, after ACTION_LABELS).
ADJUST = "adjust_balance"
REFUND = "refund_invoice"
REPLAY_WEBHOOK = "replay_webhook"
RESEND_EMAIL = "resend_email"
FAIL_JOB = "fail_job"
REVOKE_SESSIONS = "revoke_sessions"
SET_ROLE = "set_role"
RECONCILE = "reconcile"
DECIDE_REPORT = "decide_report"

ACTION_LABELS = {
    ADJUST: "Balance adjustment",
    REFUND: "Invoice refund",
    REPLAY_WEBHOOK: "Webhook processed again",
    RESEND_EMAIL: "Email sent again",
    FAIL_JOB: "Generation failed and refunded",
    REVOKE_SESSIONS: "Signed out everywhere",
    SET_ROLE: "Role change",
    RECONCILE: "Reconciliation run",
    DECIDE_REPORT: "Broken-result report decided",
}

MAX_DETAIL = 2000


def record(
    session: Session,
    actor: Account,
    action: str,
    *,
    result: str,
    detail: str,
    account_id: int | None = None,
    target: str | None = None,
    reason: str | None = None,
    request_key: str | None = None,
) -> StaffAudit:
    """Add an audit row in the caller's transaction."""
    if result not in RESULTS:
        raise ValueError(f"unknown audit result {result!r}")
    row = StaffAudit(
        actor_id=actor.id,
        actor_email=actor.email,
        actor_role=actor.role,
        action=action,
        account_id=account_id,
        target=(target or None) and target[:160],
        reason=reason,
        result=result,
        detail=(detail or "")[:MAX_DETAIL],
        request_key=(request_key or None) and request_key[:200],
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def record_refusal(
    engine: Engine,
    actor_id: int,
    action: str,
    message: str,
    *,
    account_id: object = None,
    target: str | None = None,
    reason: object = None,
) -> None:
    """A refused staff action, in its own transaction. Only for a real staff
    member (a non-staff caller is refused without a trail: it is not staff
    activity and would let anybody fill the table)."""
    with write_session(engine) as session:
        actor = session.get(Account, actor_id) if isinstance(actor_id, int) else None
        if actor is None or not staff_roles.is_staff_role(actor.role):
            return
        target_account = (
            account_id if isinstance(account_id, int) and not isinstance(account_id, bool) else None
        )
        if target_account is not None and session.get(Account, target_account) is None:
            target_account = None
        record(
            session,
            actor,
            action,
            result=REFUSED,
            detail=message,
            account_id=target_account,
            target=target,
            reason=reason if isinstance(reason, str) else None,
        )


@dataclass(frozen=True)
class AuditRow:
    id: int
    created_at: datetime
    actor_email: str
    actor_role: str
    action: str
    action_label: str
    account_id: int | None
    account_email: str | None
    target: str | None
    reason: str | None
    result: str
    detail: str


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def list_rows(
    session: Session,
    *,
    account_id: int | None = None,
    action: str | None = None,
    result: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditRow]:
    """Audit rows, newest first (filters optional; page with before_id)."""
    stmt = (
        select(StaffAudit, Account.email)
        .outerjoin(Account, Account.id == StaffAudit.account_id)
        .order_by(StaffAudit.id.desc())
        .limit(limit)
    )
    if account_id is not None:
        stmt = stmt.where(StaffAudit.account_id == account_id)
    if action:
        stmt = stmt.where(StaffAudit.action == action)
    if result:
        stmt = stmt.where(StaffAudit.result == result)
    if before_id is not None:
        stmt = stmt.where(StaffAudit.id < before_id)
    return [
        AuditRow(
            id=row.id,
            created_at=_aware(row.created_at),
            actor_email=row.actor_email,
            actor_role=row.actor_role,
            action=row.action,
            action_label=ACTION_LABELS.get(row.action, row.action.replace("_", " ").capitalize()),
            account_id=row.account_id,
            account_email=email,
            target=row.target,
            reason=row.reason,
            result=row.result,
            detail=row.detail,
        )
        for row, email in session.execute(stmt).all()
    ]
