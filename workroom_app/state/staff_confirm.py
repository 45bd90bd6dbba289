"""A staff action on the selected account that is reviewed, confirmed in a
dialog, then applied once: the balance adjustment and the invoice refund.

The flow, written once here:
1. open: the role is checked (a refusal is audited) and a request id is made;
   it becomes the action's idempotency key, so the same confirmation twice
   (double click, a retried websocket message) applies once;
2. review: the form's amount and reason are checked by billing's preview,
   and what the dialog will say is kept on the server (``pending``);
3. confirm: what was kept is applied (the browser sends no arguments), for
   the account still selected; a refusal is shown and audited; a crash says
   so and changes nothing.
Each action names its state vars, messages and billing functions in a Flow.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import reflex as rx

from workroom_app.billing.staff import NotAllowed, StaffError, StaffOnly
from workroom_app.state.staff_base import StaffBase, form_field, record_refusal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Flow:
    action: str  # the audit trail's action name
    # The state vars of this flow.
    form_open: str
    error: str
    confirm_open: str
    confirm_text: str
    request_id: str
    pending: str
    # What is said when the form is not open, and when applying crashed.
    not_open: str
    crash_message: str
    # A crash keeps what was confirmed (confirming again retries the same request).
    keep_pending_on_crash: bool
    # A refusal while applying shows the current account again, with the form open.
    reopen_on_refusal: bool


class StaffConfirmed(StaffBase, mixin=True):
    def _close_flow(self, flow: Flow) -> None:
        setattr(self, flow.form_open, False)
        setattr(self, flow.error, "")
        setattr(self, flow.confirm_open, False)
        setattr(self, flow.confirm_text, "")
        setattr(self, flow.request_id, None)
        setattr(self, flow.pending, None)

    def _close_forms(self) -> None:
        """Close every form and dialog (one action at a time)."""
        raise NotImplementedError

    def _start_flow(self, flow: Flow) -> None:
        self._close_forms()
        setattr(self, flow.request_id, secrets.token_urlsafe(16))
        setattr(self, flow.form_open, True)

    def _cancel_confirm(self, flow: Flow, value: bool) -> None:
        """The dialog's own open/close (Escape, overlay): closing only."""
        if value is not True and not self.busy:
            setattr(self, flow.confirm_open, False)
            setattr(self, flow.pending, None)

    async def _review_flow(
        self,
        flow: Flow,
        form_data: Any,
        preview: Callable[[int, int, str, str], Any],
        pending_of: Callable[[Any], dict[str, Any]],
        target: str | None = None,
    ) -> tuple[Any, Any]:
        """Check the form with billing's `preview(actor, account, amount, reason)` and
        open the dialog. Returns (events to send, the preview or None)."""
        actor = await self._actor()
        if actor is None:
            return self._refusal(), None
        account_id, request_id = self._selected_id, getattr(self, flow.request_id)
        if (
            account_id is None
            or request_id is None
            or not getattr(self, flow.form_open)
            or self.busy
        ):
            return rx.toast.error(flow.not_open), None
        try:
            amount = form_field(form_data, "amount")
            reason = form_field(form_data, "reason")
            shown = await asyncio.to_thread(preview, actor, account_id, amount, reason)
        except StaffOnly:
            self._forget()
            return self._refusal(), None
        except StaffError as exc:
            setattr(self, flow.error, str(exc))
            setattr(self, flow.pending, None)
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(
                    record_refusal, actor, flow.action, str(exc), account_id, target
                )
            return None, None
        setattr(self, flow.error, "")
        setattr(self, flow.pending, {**pending_of(shown), "request_id": request_id})
        setattr(self, flow.confirm_text, shown.summary)
        setattr(self, flow.confirm_open, True)
        return None, shown

    async def _confirm_flow(
        self,
        flow: Flow,
        apply: Callable[[int, dict[str, Any]], Any],
        done: Callable[[int, Any], Any],
        target_of: Callable[[dict[str, Any]], str | None] = lambda pending: None,
    ) -> AsyncIterator[Any]:
        """Apply what the dialog showed; `done(actor, result)` closes the flow and
        returns the toast saying what happened."""
        pending = getattr(self, flow.pending)
        if pending is None or self.busy:
            return
        actor = await self._actor()
        if actor is None:
            for event in self._refusal():
                yield event
            return
        if pending["account_id"] != self._selected_id:
            self._close_flow(flow)
            return
        self.busy = True
        yield
        try:
            result = await asyncio.to_thread(apply, actor, pending)
        except StaffOnly:
            self._forget()
            for event in self._refusal():
                yield event
            return
        except StaffError as exc:
            self.busy = False
            setattr(self, flow.confirm_open, False)
            setattr(self, flow.pending, None)
            setattr(self, flow.error, str(exc))
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(
                    record_refusal,
                    actor,
                    flow.action,
                    str(exc),
                    pending["account_id"],
                    target_of(pending),
                )
            if flow.reopen_on_refusal:
                await self._reload_details(actor)
                setattr(self, flow.form_open, True)
            yield rx.toast.error(str(exc))
            return
        except Exception:
            logger.exception("staff %s failed", flow.action)
            self.busy = False
            setattr(self, flow.confirm_open, False)
            if not flow.keep_pending_on_crash:
                setattr(self, flow.pending, None)
            setattr(self, flow.error, flow.crash_message)
            yield rx.toast.error(flow.crash_message)
            return
        yield await done(actor, result)
