"""Refunding one of the selected account's invoices (finance and admin;
billing/invoice_refunds.py): part or all of it, with a reason, reviewed,
confirmed and applied once (state/staff_confirm.py). Only invoices this
server listed for the account are accepted."""

from __future__ import annotations

from typing import Any

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, invoice_refunds, staff
from workroom_app.billing.staff import StaffError
from workroom_app.billing.staff_roles import Permission
from workroom_app.state.staff_confirm import Flow, StaffConfirmed

REFUND_FLOW = Flow(
    action=audit.REFUND,
    form_open="refund_open",
    error="refund_error",
    confirm_open="refund_confirm_open",
    confirm_text="refund_confirm_text",
    request_id="_refund_request_id",
    pending="_refund_pending",
    not_open="Open the refund form first.",
    crash_message="Something went wrong on our side. Confirm again to retry the same refund.",
    keep_pending_on_crash=True,
    reopen_on_refusal=False,
)


def _preview(
    actor_id: int, account_id: int, invoice_id: int, amount: str, reason: str
) -> invoice_refunds.RefundPreview:
    with db.read_session() as session:
        return invoice_refunds.preview(session, actor_id, account_id, invoice_id, amount, reason)


def _refund(actor_id: int, pending: dict[str, Any]) -> invoice_refunds.RefundOutcome:
    return invoice_refunds.refund_invoice(
        db.get_engine(),
        actor_id,
        pending["account_id"],
        pending["invoice_id"],
        pending["amount_cents"],
        reason=pending["reason"],
        request_id=pending["request_id"],
    )


class StaffRefunds(StaffConfirmed, mixin=True):
    refund_open: bool = False
    refund_invoice_label: str = ""
    refund_error: str = ""
    refund_confirm_open: bool = False
    refund_confirm_text: str = ""

    _refund_invoice_id: int | None = None
    _refund_request_id: str | None = None
    _refund_pending: dict[str, Any] | None = None

    def _close_refund(self) -> None:
        self._close_flow(REFUND_FLOW)
        self.refund_invoice_label = ""
        self._refund_invoice_id = None

    async def open_refund(self, invoice_id: str):
        """Open the refund form for one of the selected account's invoices
        (only ids this server listed for it are accepted)."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        refused = await self._not_permitted(
            actor, Permission.REFUND, audit.REFUND, self._selected_id
        )
        if refused is not None:
            return refused
        try:
            wanted = staff.check_id(invoice_id, "invoice")
        except StaffError as exc:
            return rx.toast.error(str(exc))
        # Only the invoices listed for the selected account (state/staff_accounts.py).
        if self._selected_id is None or wanted not in self._invoice_ids or self.busy:
            return rx.toast.error("That invoice was not found on this account.")
        self._start_flow(REFUND_FLOW)
        row = next((r for r in self.acc_invoices if r["id"] == str(wanted)), None)
        self._refund_invoice_id = wanted
        self.refund_invoice_label = (
            f"{row['number']} · {row['amount']} · {row['status_label']}" if row else ""
        )
        return None

    async def close_refund(self):
        if not self.busy:
            self._close_refund()

    async def review_refund(self, form_data: dict):
        invoice_id = self._refund_invoice_id
        if invoice_id is None:
            actor = await self._actor()
            return self._refusal() if actor is None else rx.toast.error(REFUND_FLOW.not_open)
        events, _ = await self._review_flow(
            REFUND_FLOW,
            form_data,
            lambda actor, account, amount, reason: _preview(
                actor, account, invoice_id, amount, reason
            ),
            lambda p: {
                "account_id": p.account_id,
                "invoice_id": p.invoice_id,
                "amount_cents": p.amount_cents,
                "reason": p.reason,
            },
            target=f"invoice:{invoice_id}",
        )
        return events

    async def set_refund_confirm_open(self, value: bool):
        self._cancel_confirm(REFUND_FLOW, value)

    async def confirm_refund(self):
        """Carry out what the dialog showed (kept on the server, no arguments)."""
        async for event in self._confirm_flow(
            REFUND_FLOW,
            _refund,
            self._refunded,
            target_of=lambda pending: f"invoice:{pending['invoice_id']}",
        ):
            yield event

    async def _refunded(self, actor: int, outcome: invoice_refunds.RefundOutcome):
        self.busy = False
        self._close_refund()
        await self._reload_details(actor)
        if outcome.status != invoice_refunds.SUCCEEDED:
            return rx.toast.error(outcome.message)
        if not outcome.created:
            return rx.toast.info(outcome.message)
        return rx.toast.success(outcome.message)
