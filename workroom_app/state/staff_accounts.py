"""Finding an account and looking at it on the staff dashboard: the search
(paged with "More"), the account's standing (plan, subscription, invoices,
jobs, emails, sessions, disputes, staff actions on it) and its ledger (paged
with "Older"). billing/staff.py does the reading.

What the browser may send: a search text, and an account id, accepted only
when it is one of the search results this server sent to this tab.
"""

from __future__ import annotations

import asyncio

import reflex as rx
from sqlalchemy import select

from workroom_app import db
from workroom_app.billing import (
    audit,
    clock,
    formatting,
    invoice_refunds,
    periods,
    staff,
    staff_queues,
)
from workroom_app.billing.staff import StaffError, StaffOnly
from workroom_app.models import Invoice, PaymentDispute
from workroom_app.state.session import format_credits
from workroom_app.state.staff_audit import AUDIT_ROWS, StaffAuditList, audit_row, recent_audit
from workroom_app.state.staff_base import form_field

SEARCH_PAGE = 20
LEDGER_PAGE = 20
# "More" appends to the lists; past these the staff member should search more precisely.
MAX_RESULTS = 200
MAX_LEDGER_ROWS = 200
NOT_IN_RESULTS = "That account is not in the search results. Search for it first."


# ------------------------------------------------------------ blocking work


def _search(actor_id: int, query: str, after_id: int | None) -> staff.AccountSearch:
    with db.read_session() as session:
        return staff.search_accounts(session, actor_id, query, after_id=after_id, limit=SEARCH_PAGE)


def account_details(actor_id: int, account_id: int) -> tuple:
    with db.read_session() as session:
        overview = staff.account_overview(session, actor_id, account_id)
        page = staff.recent_ledger(session, actor_id, account_id, limit=LEDGER_PAGE)
    return overview, page, _account_extras(actor_id, account_id)


def _older(actor_id: int, account_id: int, before_id: int) -> staff.StaffLedgerPage:
    with db.read_session() as session:
        return staff.recent_ledger(
            session, actor_id, account_id, before_id=before_id, limit=LEDGER_PAGE
        )


def _account_extras(actor_id: int, account_id: int) -> tuple[dict[int, int], list, dict]:
    """Refunded amounts of the shown invoices, the account's audit rows and its
    sessions, emails, recent jobs and disputes."""
    with db.read_session() as session:
        staff.require_staff(session, actor_id)
        ids = list(
            session.execute(
                select(Invoice.id)
                .where(Invoice.account_id == account_id)
                .order_by(Invoice.id.desc())
                .limit(staff.DEFAULT_INVOICE_LIMIT)
            ).scalars()
        )
        now = clock.now()
        sessions = [
            {
                "created": staff.format_time(a.created_at),
                "expires": staff.format_time(a.expires_at),
                "state": "revoked"
                if a.revoked_at is not None
                else ("expired" if periods.as_utc(a.expires_at) <= now else "live"),
            }
            for a in staff_queues.list_sessions(session, actor_id, account_id)
        ]
        emails = [
            {
                "date": staff.format_time(e.created_at),
                "subject": e.subject,
                "status": e.status,
                "error": e.last_error or "",
            }
            for e in staff_queues.list_emails(session, actor_id, account_id=account_id, limit=10)
        ]
        recent_jobs = [
            {
                "id": str(j.id),
                "date": staff.format_time(j.created_at),
                "what": f"{j.feature} / {j.model}",
                "status": j.status,
                "cost": f"{j.cost:,}",
                "stuck": "yes" if staff_queues.is_stuck(j, now) else "",
            }
            for j in staff_queues.list_jobs(session, actor_id, account_id=account_id, limit=10)
        ]
        disputes = [
            {
                "date": staff.format_time(d.created_at),
                "charge": d.charge_id,
                "reason": d.reason,
                "status": d.status.replace("_", " "),
                "amount": formatting.format_money(d.amount_cents, d.currency),
            }
            for d in session.execute(
                select(PaymentDispute)
                .where(PaymentDispute.account_id == account_id)
                .order_by(PaymentDispute.created_at.desc())
                .limit(10)
            ).scalars()
        ]
        return (
            invoice_refunds.refunded_by_invoice(session, ids),
            audit.list_rows(session, account_id=account_id, limit=AUDIT_ROWS),
            {"sessions": sessions, "emails": emails, "jobs": recent_jobs, "disputes": disputes},
        )


def _result_row(row: staff.AccountRow) -> dict[str, str]:
    return {
        "id": str(row.id),
        "email": row.email,
        "name": row.display_name,
        "role": row.role,
        "balance": format_credits(row.balance),
    }


def _ledger_row(row: staff.StaffLedgerRow) -> dict[str, str]:
    return {
        "id": str(row.id),
        "date": staff.format_time(row.created_at),
        "action": row.action_label,
        "amount": f"+{row.amount:,}" if row.amount > 0 else f"\u2212{-row.amount:,}",
        "tone": "positive" if row.amount > 0 else "negative",
        "balance": format_credits(row.balance_after),
        "note": " · ".join(
            part
            for part in (row.reason or "", f"by {row.actor_email}" if row.actor_email else "")
            if part
        ),
    }


def _invoice_row(inv: Invoice, refunded: int) -> dict[str, str]:
    return {
        "id": str(inv.id),
        "number": inv.number or "No number (failed attempt)",
        "date": staff.format_time(inv.created_at),
        "kind": inv.kind,
        "status": inv.status,
        "status_label": invoice_refunds.refund_label(inv.status, inv.amount_cents, refunded),
        "amount": formatting.format_money(inv.amount_cents, inv.currency),
        "refundable": "yes"
        if inv.status in invoice_refunds.REFUNDABLE_STATUSES and inv.amount_cents > refunded
        else "",
    }


# The account-page lists that StaffState.load, a new search and a new selection empty.
_ACCOUNT_TEXTS = (
    "acc_id",
    "acc_email",
    "acc_name",
    "acc_role",
    "acc_created",
    "acc_balance",
    "acc_plan",
    "acc_subscription",
    "acc_period_end",
)


class StaffAccounts(StaffAuditList, mixin=True):
    search_error: str = ""
    results: list[dict[str, str]] = []
    has_more_results: bool = False

    # The account being looked at (display strings only).
    selected: bool = False
    detail_error: str = ""
    acc_id: str = ""
    acc_email: str = ""
    acc_name: str = ""
    acc_role: str = ""
    acc_created: str = ""
    acc_balance: str = ""
    acc_plan: str = ""
    acc_subscription: str = ""
    acc_period_end: str = ""
    acc_jobs_total: str = "0"
    acc_jobs: list[dict[str, str]] = []
    acc_invoices: list[dict[str, str]] = []
    acc_emails: list[dict[str, str]] = []
    acc_sessions: list[dict[str, str]] = []
    acc_recent_jobs: list[dict[str, str]] = []
    acc_disputes: list[dict[str, str]] = []
    ledger_rows: list[dict[str, str]] = []
    has_older_rows: bool = False

    # Server-side only.
    _query: str = ""
    _results_after: int | None = None
    _result_ids: list[int] = []
    _ledger_before: int | None = None
    # The invoices listed for the selected account (the only ones a refund may name).
    _invoice_ids: list[int] = []

    def _forget_accounts(self) -> None:
        self.search_error = ""
        self.results = []
        self.has_more_results = False
        self._query = ""
        self._results_after = None
        self._result_ids = []

    def _clear_account(self) -> None:
        """Drop what is shown about the selected account."""
        self.selected = False
        self.detail_error = ""
        for name in _ACCOUNT_TEXTS:
            setattr(self, name, "")
        self.acc_jobs_total = "0"
        self.acc_jobs = []
        self.acc_invoices = []
        self.ledger_rows = []
        self.has_older_rows = False
        self._selected_id = None
        self._ledger_before = None
        self.acc_audit = []
        self.acc_sessions = []
        self.acc_emails = []
        self.acc_recent_jobs = []
        self.acc_disputes = []
        self._invoice_ids = []

    def _show_results(self, found: staff.AccountSearch, *, append: bool) -> None:
        rows = [_result_row(r) for r in found.rows]
        ids = [r.id for r in found.rows]
        if append:
            rows = [*self.results, *rows][:MAX_RESULTS]
            ids = [*self._result_ids, *ids][:MAX_RESULTS]
        self.results = rows
        self._result_ids = ids
        self._results_after = found.next_after_id
        self.has_more_results = found.next_after_id is not None and len(ids) < MAX_RESULTS

    def _show_details(
        self,
        overview: staff.AccountOverview,
        page: staff.StaffLedgerPage,
        extras: tuple | None = None,
    ) -> None:
        self.selected = True
        self.detail_error = ""
        self._selected_id = overview.id
        self.acc_id = str(overview.id)
        self.acc_email = overview.email
        self.acc_name = overview.display_name
        self.acc_role = overview.role
        self.acc_created = staff.format_time(overview.created_at)
        self.acc_balance = format_credits(overview.balance)
        self.acc_plan = overview.plan_name
        sub = overview.subscription
        if sub is None:
            self.acc_subscription = "Never subscribed"
            self.acc_period_end = "—"
        else:
            status = sub.status.replace("_", " ")
            if sub.cancel_at_period_end and sub.status != "ended":
                status += ", cancels at period end"
            self.acc_subscription = f"{sub.plan_name} · {status} ({sub.gateway})"
            self.acc_period_end = staff.format_time(sub.current_period_end)
        self.acc_jobs_total = format_credits(overview.jobs_total)
        self.acc_jobs = [
            {"status": status.replace("_", " "), "count": format_credits(count)}
            for status, count in overview.job_counts.items()
        ]
        refunded, audit_rows, more = extras if extras is not None else ({}, [], {})
        self.acc_sessions = more.get("sessions", [])
        self.acc_emails = more.get("emails", [])
        self.acc_recent_jobs = more.get("jobs", [])
        self.acc_disputes = more.get("disputes", [])
        self.acc_invoices = [
            _invoice_row(inv, refunded.get(inv.id, 0)) for inv in overview.invoices
        ]
        self._invoice_ids = [inv.id for inv in overview.invoices]
        self.acc_audit = [audit_row(r) for r in audit_rows]
        self.ledger_rows = [_ledger_row(r) for r in page.rows]
        self._ledger_before = page.next_before_id
        self.has_older_rows = page.next_before_id is not None

    async def _run_search(self, actor_id: int, query: str) -> None:
        found = await asyncio.to_thread(_search, actor_id, query, None)
        self._query = query
        self.search_error = ""
        self._show_results(found, append=False)

    async def _reload_details(self, actor_id: int) -> None:
        account_id = self._selected_id
        if account_id is None:
            return
        try:
            overview, page, extras = await asyncio.to_thread(account_details, actor_id, account_id)
        except StaffOnly:
            # Demoted between two queries: the next event is refused anyway.
            self._forget()
            return
        except StaffError as exc:
            self.detail_error = str(exc)
            return
        self._show_details(overview, page, extras)
        # After an action: the audit list and the balance in the results follow.
        self.audit_rows = [audit_row(r) for r in await asyncio.to_thread(recent_audit, actor_id)]
        self.results = [
            {**row, "balance": self.acc_balance} if row["id"] == self.acc_id else row
            for row in self.results
        ]

    # -------------------------------------------------------------- events
    async def search(self, form_data: dict):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            query = staff.check_query(form_field(form_data, "query"))
            await self._run_search(actor, query)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.search_error = str(exc)
        return None

    async def more_results(self):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if self._results_after is None or len(self._result_ids) >= MAX_RESULTS:
            return None
        try:
            found = await asyncio.to_thread(_search, actor, self._query, self._results_after)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.search_error = str(exc)
            return None
        self._show_results(found, append=True)
        return None

    async def select_account(self, account_id: str):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            wanted = staff.check_id(account_id)
        except StaffError as exc:
            return rx.toast.error(str(exc))
        if wanted not in self._result_ids:
            return rx.toast.error(NOT_IN_RESULTS)
        try:
            overview, page, extras = await asyncio.to_thread(account_details, actor, wanted)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self._clear_selection()
            self.detail_error = str(exc)
            return rx.toast.error(str(exc))
        self._clear_selection()
        self._show_details(overview, page, extras)
        return None

    async def older_rows(self):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id, before = self._selected_id, self._ledger_before
        if account_id is None or before is None or len(self.ledger_rows) >= MAX_LEDGER_ROWS:
            return None
        try:
            page = await asyncio.to_thread(_older, actor, account_id, before)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.detail_error = str(exc)
            return None
        self.ledger_rows = [*self.ledger_rows, *(_ledger_row(r) for r in page.rows)][
            :MAX_LEDGER_ROWS
        ]
        self._ledger_before = page.next_before_id
        self.has_older_rows = (
            page.next_before_id is not None and len(self.ledger_rows) < MAX_LEDGER_ROWS
        )
        return None

    def _clear_selection(self) -> None:
        """Drop the selected account and close its forms (StaffState)."""
        raise NotImplementedError
