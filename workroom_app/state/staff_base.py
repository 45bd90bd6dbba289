"""What every part of the staff accounts dashboard (/staff/accounts) shares:
who is asking (re-checked on every event), what their role may do, the
account being looked at, and how a refusal is answered and audited.

The dashboard's state is one Reflex state, StaffState (state/staff.py), put
together from one mixin per concept (accounts and ledger, adjustments,
invoice refunds, sessions, roles, reconciliation, audit list); each mixin
derives from StaffBase so it can use these helpers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, staff_roles
from workroom_app.billing.staff import StaffError
from workroom_app.billing.staff_roles import Permission
from workroom_app.models import Account
from workroom_app.routes import LANDING_ROUTE, LOGIN_ROUTE
from workroom_app.state.session import SessionState

NOT_STAFF = "The staff dashboard is for staff members only."
FORM_UNREADABLE = "The form could not be read. Reload the page and try again."
# Longer form values are never legitimate (the reason is capped at 500).
MAX_FIELD = 2000


def form_field(form_data: Any, name: str) -> str:
    """One text field of a submitted form; StaffError for anything a form cannot send."""
    if not isinstance(form_data, dict):
        raise StaffError(FORM_UNREADABLE)
    value = form_data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise StaffError(FORM_UNREADABLE)
    return value


def role_of(account_id: int) -> str | None:
    with db.read_session() as session:
        account = session.get(Account, account_id)
        return account.role if account is not None else None


def record_refusal(
    actor_id: int, action: str, message: str, account_id: int | None, target: str | None = None
) -> None:
    """A staff member's refused action, in the audit trail (its own transaction)."""
    audit.record_refusal(
        db.get_engine(), actor_id, action, message, account_id=account_id, target=target
    )


class StaffBase(SessionState, mixin=True):
    # True only after the server has checked this visitor is staff.
    allowed: bool = False
    loading: bool = False
    # An action is being carried out: the forms and dialogs wait.
    busy: bool = False

    # What this staff member's role may do (hides controls; the server checks again).
    my_role: str = ""
    can_adjust: bool = False
    can_refund: bool = False
    can_manage_roles: bool = False
    can_reconcile: bool = False
    can_revoke: bool = False
    adjust_limit_text: str = ""

    # Server-side only: the browser can neither read nor set these.
    _role: str | None = None
    _selected_id: int | None = None

    def _set_role_flags(self) -> None:
        role = self._role or ""
        self.my_role = staff_roles.ROLE_LABELS.get(staff_roles.effective_role(role) or "", "")
        self.can_adjust = staff_roles.can(role, Permission.ADJUST)
        self.can_refund = staff_roles.can(role, Permission.REFUND)
        self.can_manage_roles = staff_roles.can(role, Permission.MANAGE_ROLES)
        self.can_reconcile = staff_roles.can(role, Permission.RECONCILE)
        self.can_revoke = staff_roles.can(role, Permission.REVOKE_SESSIONS)
        limit = staff_roles.adjust_limit(role)
        self.adjust_limit_text = f"{limit:,}" if limit else ""

    async def _actor(self) -> int | None:
        """The signed-in staff member's id, re-checked now; None (and the
        dashboard emptied) for anybody else."""
        if self._account_id is None or not await self._reload_account() or not self.is_staff:
            self._forget()
            return None
        self._role = await asyncio.to_thread(role_of, self._account_id)
        self._set_role_flags()
        return self._account_id

    def _refusal(self) -> list:
        if self._account_id is None:
            return [rx.redirect(LOGIN_ROUTE, replace=True)]
        return [rx.toast.error(NOT_STAFF), rx.redirect(LANDING_ROUTE, replace=True)]

    async def _not_permitted(
        self,
        actor: int,
        permission: Permission,
        action: str,
        account_id: int | None,
        target: str | None = None,
    ) -> rx.event.EventSpec | None:
        """None when the role may do it; else the refusal, audited, as a toast."""
        if staff_roles.can(self._role, permission):
            return None
        message = staff_roles.REFUSALS[permission]
        await asyncio.to_thread(record_refusal, actor, action, message, account_id, target)
        return rx.toast.error(message)

    # Provided by the mixins StaffState is made of (state/staff.py).
    def _forget(self) -> None:
        raise NotImplementedError

    async def _reload_details(self, actor_id: int) -> None:
        raise NotImplementedError
