"""Changing the selected account's role (admins only, with a reason;
billing/staff.py ``set_role``)."""

from __future__ import annotations

import asyncio

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, staff
from workroom_app.billing.staff import NotAllowed, StaffError, StaffOnly
from workroom_app.state.staff_base import StaffBase, form_field, record_refusal


def _set_role(actor_id: int, account_id: int, role: str, reason: str) -> staff.RoleChange:
    with db.write_session() as session:
        return staff.set_role(session, actor_id, account_id, role, reason=reason)


class StaffRoleChange(StaffBase, mixin=True):
    role_error: str = ""

    async def change_role(self, form_data: dict):
        """Admins only: give the selected account a role, with a reason."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id = self._selected_id
        if account_id is None:
            return None
        try:
            role = form_field(form_data, "role")
            reason = form_field(form_data, "reason")
            change = await asyncio.to_thread(_set_role, actor, account_id, role, reason)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.role_error = str(exc)
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(record_refusal, actor, audit.SET_ROLE, str(exc), account_id)
            return None
        self.role_error = ""
        await self._reload_details(actor)
        if not change.changed:
            return rx.toast.info(f"{change.email} already has the role {change.new_role}.")
        return rx.toast.success(f"{change.email} is now {change.new_role} (was {change.old_role}).")
