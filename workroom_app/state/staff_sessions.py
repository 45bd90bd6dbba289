"""Signing the selected account out everywhere (support and admin;
billing/staff_queues.py ``sign_out_everywhere``), with a reason."""

from __future__ import annotations

import asyncio

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, staff_queues
from workroom_app.billing.staff import StaffError, StaffOnly
from workroom_app.billing.staff_roles import Permission
from workroom_app.state.staff_base import StaffBase, form_field


def _sign_out(actor_id: int, account_id: int, reason: str) -> staff_queues.ActionResult:
    with db.write_session() as session:
        return staff_queues.sign_out_everywhere(session, actor_id, account_id, reason=reason)


class StaffSessions(StaffBase, mixin=True):
    sessions_error: str = ""

    async def sign_out_everywhere(self, form_data: dict):
        """Support and admin: revoke every live login of the selected account."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id = self._selected_id
        if account_id is None:
            return None
        refused = await self._not_permitted(
            actor, Permission.REVOKE_SESSIONS, audit.REVOKE_SESSIONS, account_id
        )
        if refused is not None:
            return refused
        try:
            reason = form_field(form_data, "reason")
            result = await asyncio.to_thread(_sign_out, actor, account_id, reason)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.sessions_error = str(exc)
            return None
        self.sessions_error = ""
        await self._reload_details(actor)
        return rx.toast.success(result.message) if result.done else rx.toast.info(result.message)
