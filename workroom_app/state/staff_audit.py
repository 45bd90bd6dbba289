"""The audit trail on the staff accounts dashboard: the latest staff actions
(billing/audit.py), and the ones on the selected account."""

from __future__ import annotations

import asyncio

from workroom_app import db
from workroom_app.billing import audit, staff
from workroom_app.state.staff_base import StaffBase

AUDIT_ROWS = 30


def recent_audit(actor_id: int) -> list[audit.AuditRow]:
    with db.read_session() as session:
        staff.require_staff(session, actor_id)
        return audit.list_rows(session, limit=AUDIT_ROWS)


def audit_row(row: audit.AuditRow) -> dict[str, str]:
    return {
        "id": str(row.id),
        "date": staff.format_time(row.created_at),
        "who": f"{row.actor_email} ({row.actor_role})",
        "action": row.action_label,
        "account": row.account_email or "",
        "reason": row.reason or "",
        "result": row.result,
        "detail": row.detail,
    }


class StaffAuditList(StaffBase, mixin=True):
    audit_rows: list[dict[str, str]] = []
    acc_audit: list[dict[str, str]] = []

    async def _show_recent_audit(self, actor: int) -> None:
        self.audit_rows = [audit_row(r) for r in await asyncio.to_thread(recent_audit, actor)]

    async def refresh_audit(self):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        await self._show_recent_audit(actor)
        return None
