"""Adjusting the selected account's balance (billing/staff.py ``adjust``):
support up to their limit, admins up to MAX_ADJUSTMENT, never their own
balance. Reviewed, confirmed and applied once (state/staff_confirm.py)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, staff
from workroom_app.billing.staff_roles import Permission
from workroom_app.state.session import format_credits
from workroom_app.state.staff_confirm import Flow, StaffConfirmed

ADJUST_FLOW = Flow(
    action=audit.ADJUST,
    form_open="adjust_open",
    error="adjust_error",
    confirm_open="confirm_open",
    confirm_text="confirm_text",
    request_id="_request_id",
    pending="_pending",
    not_open="Open the adjustment form first.",
    crash_message="Something went wrong on our side. Nothing was changed; please try again.",
    keep_pending_on_crash=False,
    reopen_on_refusal=True,
)


def _preview(actor_id: int, account_id: int, amount: str, reason: str) -> staff.AdjustmentPreview:
    with db.read_session() as session:
        return staff.preview_adjustment(session, actor_id, account_id, amount, reason)


def _apply(actor_id: int, pending: dict[str, Any]) -> staff.AdjustmentResult:
    with db.write_session() as session:
        return staff.adjust(
            session,
            actor_id,
            pending["account_id"],
            pending["amount"],
            reason=pending["reason"],
            request_id=pending["request_id"],
        )


class StaffAdjust(StaffConfirmed, mixin=True):
    adjust_open: bool = False
    adjust_error: str = ""
    confirm_open: bool = False
    confirm_text: str = ""
    confirm_reason: str = ""

    _request_id: str | None = None
    _pending: dict[str, Any] | None = None

    def _close_adjustment(self) -> None:
        self._close_flow(ADJUST_FLOW)
        self.confirm_reason = ""
        self.busy = False

    async def open_adjustment(self):
        """Open the adjustment form; its request id makes the eventual
        adjustment idempotent."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if self._selected_id is None or self.busy:
            return None
        refused = await self._not_permitted(
            actor, Permission.ADJUST, audit.ADJUST, self._selected_id
        )
        if refused is not None:
            return refused
        self._start_flow(ADJUST_FLOW)
        return None

    async def close_adjustment(self):
        if self.busy:
            return None
        self._close_adjustment()
        return None

    async def review_adjustment(self, form_data: dict):
        """Check the form and open the confirmation dialog with what it will do."""
        events, preview = await self._review_flow(
            ADJUST_FLOW,
            form_data,
            _preview,
            lambda p: {"account_id": p.account_id, "amount": p.amount, "reason": p.reason},
        )
        if preview is not None:
            self.confirm_reason = preview.reason
        return events

    async def set_confirm_open(self, value: bool):
        """The dialog's own open/close (Escape, overlay): closing only."""
        self._cancel_confirm(ADJUST_FLOW, value)

    async def confirm_adjustment(self):
        """Apply what the dialog showed (no arguments: it was kept on the server)."""
        async for event in self._confirm_flow(ADJUST_FLOW, _apply, self._adjusted):
            yield event

    async def _adjusted(self, actor: int, result: staff.AdjustmentResult):
        self._close_adjustment()
        await self._reload_details(actor)
        # The results list shows balances too: keep the adjusted one current.
        self.results = [
            {**row, "balance": format_credits(result.balance_after)}
            if row["id"] == str(result.account_id)
            else row
            for row in self.results
        ]
        if not result.created:
            return rx.toast.info("This adjustment was already applied.")
        verb = "Added" if result.amount > 0 else "Removed"
        preposition = "to" if result.amount > 0 else "from"
        return rx.toast.success(
            f"{verb} {abs(result.amount):,} credits {preposition} {result.email}. "
            f"New balance: {result.balance_after:,}."
        )
