"""The Subscription page state: current plan, renewal, the card on file and
Payment History (every invoice, paid or failed, newest first, paged in the
database).

The browser may send: an invoice id to look at (checked against the signed-in
owner: someone else's reads as "not found", exactly like a missing one), the
raw card form to replace the card (checked by payments/cards.py via the
engine, never stored here), and argument-less paging events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import reflex as rx

from workroom_app.billing import formatting, invoices, payment_confirmation, subscriptions
from workroom_app.billing.catalog import get_catalog
from workroom_app.billing.invoice_refunds import refund_label, refunded_by_invoice, refunded_cents
from workroom_app.billing.subscriptions import (
    CardForm,
    CardFormError,
    SubscriptionError,
    card_form_field,
    plan_actions,
    read_card_form,
)
from workroom_app.components.plan_text import date_text, money_text
from workroom_app.db import read_session, write_session
from workroom_app.models import Invoice
from workroom_app.state.alerts import AlertsState
from workroom_app.state.card_payment import card_error_var
from workroom_app.state.payment_confirmation import go_to_confirmation
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)

PAGE_SIZE = 20
INVOICE_PDF_PATH = "/api/invoices/{invoice_id}/pdf"
NOT_FOUND = "That invoice was not found."

_KIND_LABELS = {
    "activation": "Subscription",
    "renewal": "Renewal",
    "upgrade": "Upgrade",
    "downgrade": "Downgrade",
    "pack": "Credit pack",
}


def invoice_pdf_path(invoice_id: int) -> str:
    return INVOICE_PDF_PATH.format(invoice_id=int(invoice_id))


@dataclasses.dataclass
class PaymentRow:
    id: int = 0
    number: str = ""
    date: str = ""
    description: str = ""
    amount: str = ""
    card: str = ""
    status: str = ""  # paid | failed | refunded
    status_label: str = ""
    reason: str = ""
    pdf: str = ""


@dataclasses.dataclass
class InvoiceLineRow:
    description: str = ""
    quantity: str = ""
    amount: str = ""


def payment_row(
    invoice: Invoice, first_line: str, zone: str = "UTC", refunded_cents: int = 0
) -> PaymentRow:
    label = refund_label(invoice.status, invoice.amount_cents, refunded_cents)
    if refunded_cents > 0 and label == "Partly refunded":
        label += f" ({money_text(refunded_cents, invoice.currency)})"
    return PaymentRow(
        id=invoice.id,
        number=invoice.number or "",  # "" for a failed attempt: no number, no PDF
        date=date_text(invoice.created_at, zone),
        description=first_line or _KIND_LABELS.get(invoice.kind, invoice.kind.title()),
        amount=money_text(invoice.amount_cents, invoice.currency),
        card=subscriptions.short_card_label(invoice.card_brand, invoice.card_last4),
        status=invoice.status,
        status_label=label,
        reason=invoice.failure_reason or "",
        pdf=invoice_pdf_path(invoice.id) if invoice.number else "",
    )


@dataclasses.dataclass(frozen=True)
class Overview:
    plan_name: str
    plan_key: str
    status: str
    renewal_text: str
    renewal_amount: str
    auto_renew: bool
    period_end: str
    card_label: str
    has_card: bool
    cards_managed_here: bool
    retry_note: str


def read_overview(account_id: int) -> Overview:
    with read_session() as session:
        s = subscriptions.summary(session, account_id)
        standing = plan_actions.standing(session, account_id, s)
    zone = standing.zone
    currency = _currency()
    if standing.ended():
        renewal, amount = "—", "—"
    elif standing.cancel_at_period_end:
        renewal, amount = "Does not renew", money_text(0, currency)
    else:
        # The period's end seen in the account's zone (the same day "ends" shows).
        renews = s.current_period_end if s.current_period_end is not None else s.next_renewal_date
        renewal, amount = date_text(renews, zone), money_text(s.renewal_amount_cents, currency)
    retry = ""
    if standing.past_due():
        # Honest past due: not a renewal date in the past and "Auto-renewal On".
        with read_session() as session:
            failing = subscriptions.past_due(session, account_id)
        renewal = "Past due"
        amount = money_text(failing.amount_cents, currency) + " failed" if failing else "—"
        retry = failing.message() if failing else "Your last renewal payment failed."
        with read_session() as session:
            waiting = [
                w
                for w in payment_confirmation.pending_for_account(session, account_id)
                if w.kind == "renewal"
            ]
        if waiting:
            # Waiting for the card holder (3-D Secure) is not a failure: say what to do.
            amount, retry = waiting[0].amount_text + " to confirm", waiting[0].message()
    return Overview(
        plan_name=s.plan_name,
        plan_key=s.plan_key,
        status=s.status,
        renewal_text=renewal,
        renewal_amount=amount,
        auto_renew=standing.auto_renews(),
        period_end=date_text(s.current_period_end, zone) if s.current_period_end else "—",
        card_label=subscriptions.card_label(s.card) if s.card is not None else "",
        has_card=s.card is not None,
        # A hosted gateway's customer (Stripe) replaces the card on its pages, not our form.
        cards_managed_here=standing.cards_managed_here,
        retry_note=retry,
    )


def _currency() -> str:
    return get_catalog().currency


def read_payments(account_id: int, offset: int) -> tuple[list[PaymentRow], int]:
    with read_session() as session:
        rows = invoices.list_for_account(session, account_id, limit=PAGE_SIZE, offset=offset)
        total = invoices.count_for_account(session, account_id)
        zone = formatting.account_zone(session, account_id).key
        refunded = refunded_by_invoice(session, [inv.id for inv in rows])
        out = []
        for inv in rows:
            lines = invoices.lines_of(session, inv.id)
            first = lines[0].description if lines else ""
            out.append(payment_row(inv, first, zone, refunded.get(inv.id, 0)))
    return out, int(total)


def read_invoice(viewer_id: int, invoice_id: object):
    """(row, lines) when the viewer may see it, else None (any reason alike)."""
    with read_session() as session:
        inv = invoices.get_for_viewer(session, invoice_id, viewer_id)
        if inv is None:
            return None
        lines = invoices.lines_of(session, inv.id)
        zone = formatting.account_zone(session, viewer_id).key
        return (
            payment_row(
                inv, lines[0].description if lines else "", zone, refunded_cents(session, inv.id)
            ),
            [
                InvoiceLineRow(
                    line.description,
                    str(line.quantity),
                    money_text(line.amount_cents * line.quantity, inv.currency),
                )
                for line in lines
            ],
            (
                f"{date_text(inv.period_start, zone)} – {date_text(inv.period_end, zone)}"
                if inv.period_start and inv.period_end
                else ""
            ),
        )


def save_card(account_id: int, card: CardForm) -> str:
    with write_session() as session:
        pm = subscriptions.save_card(session, account_id, card)
        return subscriptions.card_label(pm)


def pay_now(account_id: int) -> subscriptions.Outcome:
    # On the gateway that bills the plan (with Stripe: its open renewal invoice, off-session).
    return plan_actions.pay_now(account_id)


def _parse_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # Database ids are 64-bit: anything bigger cannot be an invoice.
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value) or None
    return None


class SubscriptionState(SessionState):
    loading: bool = True
    plan_status: str = "free"
    current_plan: str = "Free"
    # The current plan's catalog key: the auto-renewal button sends it to
    # PlansState.open_action, which re-checks it like the Plans card does.
    current_plan_key: str = ""
    renewal_text: str = "—"
    renewal_amount: str = "—"
    auto_renew: bool = False
    period_end: str = "—"
    card_label: str = ""
    has_card: bool = False
    cards_managed_here: bool = True
    retry_note: str = ""
    pay_busy: bool = False

    payments: list[PaymentRow] = []
    payments_total: int = 0
    has_more: bool = False

    card_form_open: bool = False
    card_busy: bool = False
    number_error: str = ""
    expiry_error: str = ""
    cvc_error: str = ""
    name_error: str = ""
    card_form_error: str = ""

    invoice_open: bool = False
    invoice: PaymentRow = PaymentRow()
    invoice_lines: list[InvoiceLineRow] = []
    invoice_period: str = ""

    # How many rows are loaded (the next page starts here); server-side only.
    _offset: int = 0

    async def _read_overview(self) -> None:
        o = await asyncio.to_thread(read_overview, self._account_id)
        self.plan_status = o.status
        self.current_plan = o.plan_name
        self.current_plan_key = o.plan_key
        self.renewal_text = o.renewal_text
        self.renewal_amount = o.renewal_amount
        self.auto_renew = o.auto_renew
        self.period_end = o.period_end
        self.card_label = o.card_label
        self.has_card = o.has_card
        self.cards_managed_here = o.cards_managed_here
        self.retry_note = o.retry_note

    async def _read_first_page(self) -> None:
        rows, total = await asyncio.to_thread(read_payments, self._account_id, 0)
        self.payments = rows
        self._offset = len(rows)
        self.payments_total = total
        self.has_more = self._offset < total

    async def load(self):
        """on_load (after the login guard)."""
        if self._account_id is None:
            return
        self.loading = True
        self.invoice_open = False
        self.card_form_open = False
        yield
        try:
            checkout_id = self.router.url.query_parameters.get("checkout_session", "")
            if checkout_id:
                # Back from a hosted checkout: activate now rather than wait for the webhook.
                try:
                    await asyncio.to_thread(plan_actions.finish_checkout, checkout_id)
                    await self._reload_account()
                except Exception as exc:  # noqa: BLE001
                    log.warning("checkout sync failed: %s", exc)
            await self._read_overview()
            await self._read_first_page()
        finally:
            self.loading = False

    async def refresh_overview(self):
        """After auto-renewal was cancelled or resumed from this page."""
        if self._account_id is None:
            return
        await self._read_overview()

    async def refresh_payments(self):
        """Sent by the live push (state/live.py) when a payment or the subscription changed
        elsewhere (a staff refund, an auto top-up, a renewal): re-read what this page shows."""
        if self._account_id is None:
            return
        await self._read_overview()
        await self._read_first_page()

    async def more_payments(self):
        if self._account_id is None or not self.has_more:
            return
        rows, total = await asyncio.to_thread(read_payments, self._account_id, self._offset)
        known = {r.id for r in self.payments}
        self.payments = self.payments + [r for r in rows if r.id not in known]
        self._offset += len(rows)
        self.payments_total = total
        self.has_more = self._offset < total

    async def open_invoice(self, invoice_id: int):
        """The invoice's lines in a dialog; someone else's id is "not found"."""
        account_id = self._account_id
        if account_id is None:
            return
        parsed = _parse_id(invoice_id)
        found = await asyncio.to_thread(read_invoice, account_id, parsed) if parsed else None
        if found is None:
            self.invoice_open = False
            return rx.toast.error(NOT_FOUND)
        self.invoice, self.invoice_lines, self.invoice_period = found
        self.invoice_open = True
        return None

    def set_invoice_open(self, value: bool):
        if value is not True:
            self.invoice_open = False

    def _clear_card_errors(self) -> None:
        self.number_error = self.expiry_error = self.cvc_error = self.name_error = ""
        self.card_form_error = ""

    def toggle_card_form(self):
        if not self.cards_managed_here:
            return
        self.card_form_open = not self.card_form_open
        self._clear_card_errors()

    async def submit_card(self, form_data: dict):
        """Replace the card on file (checked, and a decline number refused, first)."""
        account_id = self._account_id
        if account_id is None or self.card_busy:
            return
        self._clear_card_errors()
        try:
            card = read_card_form(form_data)
        except CardFormError as exc:
            self._card_error(exc.field, str(exc))
            return
        self.card_busy = True
        yield
        try:
            label = await asyncio.to_thread(save_card, account_id, card)
        except SubscriptionError as exc:
            self._card_error(card_form_field(exc), str(exc))
            return
        except Exception:  # noqa: BLE001
            log.exception("saving a card failed")
            self.card_form_error = (
                "Something went wrong; your card was not changed. Please try again."
            )
            return
        finally:
            self.card_busy = False
        self.card_form_open = False
        await self._read_overview()
        yield rx.toast.success(f"Card saved: {label}.")

    def _card_error(self, field: str, message: str) -> None:
        setattr(self, card_error_var(field, "card_form_error"), message)

    async def pay_now(self):
        """Past due: charge the failed renewal now with the card on file. Takes no arguments."""
        account_id = self._account_id
        if account_id is None or self.pay_busy:
            return
        self.pay_busy = True
        yield
        try:
            outcome = await asyncio.to_thread(pay_now, account_id)
        except SubscriptionError as exc:
            yield rx.toast.error(str(exc))
            return
        except Exception:  # noqa: BLE001
            log.exception("pay now failed")
            yield rx.toast.error("Something went wrong; nothing was charged. Please try again.")
            return
        finally:
            self.pay_busy = False
        if outcome.requires_action:
            # 3-D Secure: on to the confirmation step; the plan renews once confirmed.
            yield go_to_confirmation(outcome.confirm_url)
            return
        await self._read_overview()
        await self._read_first_page()
        await self._reload_account()
        alerts_state = await self.get_state(AlertsState)
        async for update in alerts_state.refresh():
            yield update
        if outcome.ok:
            yield rx.toast.success(outcome.message, duration=8000)
        else:
            yield rx.toast.error(outcome.message, duration=8000)
