"""The balance's popover in the header (every page): the balance by source,
"N credits expire on DATE", and the account's alerts with an unread badge.

`refresh` runs when the balance element mounts, and the balance element is
keyed on the balance, so every balance change (a generation, a refund, a
purchase, a live push) re-reads the alerts; an alert not yet shown as a toast
is shown once. Takes no arguments: the account is always the signed-in one.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx

from workroom_app.billing import alerts, balance_sources, payment_confirmation, subscriptions
from workroom_app.db import read_session, write_session
from workroom_app.state.session import SessionState


@dataclasses.dataclass
class AlertItem:
    id: int
    kind: str
    title: str
    body: str
    link: str
    unread: bool


@dataclasses.dataclass
class ConfirmItem:
    """A payment waiting for its card holder (3-D Secure): "Confirm this payment"."""

    message: str
    url: str


@dataclasses.dataclass
class SourceRow:
    label: str
    credits_text: str
    testid: str


def read_popover(account_id: int):
    """Blocking: (alerts, unread count, balance by source, expiry line, toasts to
    show now, the past-due banner's text or "")."""
    # Reads only: this runs on every balance change, and a write transaction
    # would queue behind (and hold up) debits on SQLite.
    with read_session() as session:
        views, unread = alerts.recent(session, account_id)
        parts = balance_sources.breakdown(session, account_id)
        failing = subscriptions.past_due(session, account_id)
        waiting = payment_confirmation.pending_for_account(session, account_id)
    toasts = [v for v in views if v.toast]
    if toasts:
        with write_session() as session:
            mine = alerts.mark_toasted(session, account_id, [v.id for v in toasts])
        toasts = [v for v in toasts if v.id in mine]
    items = [AlertItem(v.id, v.kind, v.title, v.body, v.link or "", v.unread) for v in views]
    rows = [
        SourceRow(label, f"{parts.parts[key]:,}", f"balance-part-{key}")
        for key, label in balance_sources.PART_LABELS.items()
        if parts.parts[key] or key in ("plan", "packs")
    ]
    expiring = (
        alerts.expiring_text(parts.expiring_credits, parts.expiring_on)
        if parts.expiring_credits and parts.expiring_on
        else ""
    )
    # Oldest first, so the newest toast ends up on top; at most 3 at once.
    toast_list = [(v.kind, v.title) for v in reversed(toasts)][-3:]
    past_due = failing.message() if failing is not None else ""
    past_due_url = ""
    renewal = next((w for w in waiting if w.kind == "renewal"), None)
    if failing is not None and renewal is not None:
        # A renewal waiting for confirmation has not failed: the banner asks for it instead.
        past_due, past_due_url = renewal.message(), renewal.url
    confirms = [ConfirmItem(w.message(), w.url) for w in waiting if w is not renewal]
    return (items, unread, rows, expiring, toast_list, past_due, past_due_url, confirms)


def mark_read(account_id: int) -> None:
    with write_session() as session:
        alerts.mark_all_read(session, account_id)


class AlertsState(SessionState):
    """A SessionState like every page's state: its events pass the session guard's check
    (state/session_guard.py) before they read the account."""

    alerts: list[AlertItem] = []
    unread: int = 0
    sources: list[SourceRow] = []
    expiring_text: str = ""
    # While a renewal payment is failing: the banner on every page.
    past_due_text: str = ""
    # ... and when that renewal waits for the card holder: where to confirm it.
    past_due_confirm_url: str = ""
    # Other payments waiting for the card holder (3-D Secure): a banner on every page.
    confirmations: list[ConfirmItem] = []

    async def refresh(self):
        account_id = self._account_id
        if account_id is None:
            return
        (
            items,
            unread,
            rows,
            expiring,
            toasts,
            past_due,
            confirm_url,
            confirms,
        ) = await asyncio.to_thread(read_popover, account_id)
        self.alerts, self.unread, self.sources, self.expiring_text = items, unread, rows, expiring
        self.past_due_text, self.past_due_confirm_url = past_due, confirm_url
        self.confirmations = confirms
        for kind, title in toasts:
            if kind in ("payment_failed", "low_balance", "plan_ended"):
                yield rx.toast.warning(title, duration=8000)
            else:
                yield rx.toast.info(title, duration=8000)

    async def refresh_on_open(self, is_open: bool):
        if is_open is True:
            async for update in self.refresh():
                yield update

    async def mark_all_read(self):
        account_id = self._account_id
        if account_id is None or self.unread == 0:
            return
        await asyncio.to_thread(mark_read, account_id)
        self.unread = 0
        self.alerts = [dataclasses.replace(a, unread=False) for a in self.alerts]
