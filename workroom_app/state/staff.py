"""The staff dashboard's state (/staff). The work is billing/staff.py.

Every handler re-checks on the server that the caller is staff: it re-reads
the login behind the cookie (so a revoked login or a demoted role stops
working at once), and billing/staff checks the role again inside each
transaction. `is_staff` on SessionState only decides what the sidebar shows.

What the browser may send: a search text, an account id (accepted only when
it is one of the search results this server sent to this tab), and the
adjustment form's amount and reason. The adjustment itself is applied from
what the server kept when the confirmation dialog opened (`_pending`), never
from arguments, under a request id made when the form opened: the same
confirmation twice applies once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import reflex as rx

from workroom_app.billing import audit, invoice_refunds, staff, staff_roles
from workroom_app.billing.staff import NotAllowed, StaffError, StaffOnly
from workroom_app.billing.staff_roles import Permission
from workroom_app.routes import LANDING_ROUTE, LOGIN_ROUTE
from workroom_app.state.session import SessionState, format_credits

logger = logging.getLogger(__name__)

SEARCH_PAGE = 20
AUDIT_ROWS = 30
LEDGER_PAGE = 20
# "More" appends to the lists; past these the staff member should search more precisely.
MAX_RESULTS = 200
MAX_LEDGER_ROWS = 200
# Longer form values are never legitimate (the reason is capped at 500).
_MAX_FIELD = 2000
NOT_STAFF = "The staff dashboard is for staff members only."
FORM_UNREADABLE = "The form could not be read. Reload the page and try again."
NOT_IN_RESULTS = "That account is not in the search results. Search for it first."


def _field(form_data: Any, name: str) -> str:
    if not isinstance(form_data, dict):
        raise StaffError(FORM_UNREADABLE)
    value = form_data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise StaffError(FORM_UNREADABLE)
    return value


def _money(cents: int, currency: str) -> str:
    symbol = "$" if currency.lower() == "usd" else ""
    text = f"{symbol}{cents / 100:,.2f}"
    return text if symbol else f"{text} {currency.upper()}"


# ------------------------------------------------------------ blocking work


def _search(actor_id: int, query: str, after_id: int | None) -> staff.AccountSearch:
    from workroom_app.db import read_session

    with read_session() as session:
        return staff.search_accounts(session, actor_id, query, after_id=after_id, limit=SEARCH_PAGE)


def _details(actor_id: int, account_id: int) -> tuple:
    from workroom_app.db import read_session

    with read_session() as session:
        overview = staff.account_overview(session, actor_id, account_id)
        page = staff.recent_ledger(session, actor_id, account_id, limit=LEDGER_PAGE)
    return overview, page, _account_extras(actor_id, account_id)


def _older(actor_id: int, account_id: int, before_id: int) -> staff.StaffLedgerPage:
    from workroom_app.db import read_session

    with read_session() as session:
        return staff.recent_ledger(
            session, actor_id, account_id, before_id=before_id, limit=LEDGER_PAGE
        )


def _preview(actor_id: int, account_id: int, amount: str, reason: str) -> staff.AdjustmentPreview:
    from workroom_app.db import read_session

    with read_session() as session:
        return staff.preview_adjustment(session, actor_id, account_id, amount, reason)


def _apply(actor_id: int, pending: dict[str, Any]) -> staff.AdjustmentResult:
    from workroom_app.db import write_session

    with write_session() as session:
        return staff.adjust(
            session,
            actor_id,
            pending["account_id"],
            pending["amount"],
            reason=pending["reason"],
            request_id=pending["request_id"],
        )


def _role_of(account_id: int) -> str | None:
    from workroom_app.db import read_session
    from workroom_app.models import Account

    with read_session() as session:
        account = session.get(Account, account_id)
        return account.role if account is not None else None


def _account_extras(actor_id: int, account_id: int) -> tuple[dict[int, int], list[audit.AuditRow]]:
    """Refunded amounts of the shown invoices and the account's audit rows."""
    from sqlalchemy import select as _select

    from workroom_app.db import read_session
    from workroom_app.models import Invoice

    with read_session() as session:
        staff.require_staff(session, actor_id)
        ids = list(
            session.execute(
                _select(Invoice.id)
                .where(Invoice.account_id == account_id)
                .order_by(Invoice.id.desc())
                .limit(staff.DEFAULT_INVOICE_LIMIT)
            ).scalars()
        )
        from workroom_app.billing import clock as _clock, staff_queues

        now = _clock.now()
        sessions = [
            {
                "created": staff.format_time(a.created_at),
                "expires": staff.format_time(a.expires_at),
                "state": "revoked"
                if a.revoked_at is not None
                else ("expired" if staff._aware(a.expires_at) <= now else "live"),
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
        from workroom_app.models import PaymentDispute

        disputes = [
            {
                "date": staff.format_time(d.created_at),
                "charge": d.charge_id,
                "reason": d.reason,
                "status": d.status.replace("_", " "),
                "amount": _money(d.amount_cents, d.currency),
            }
            for d in session.execute(
                _select(PaymentDispute)
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


def _recent_audit(actor_id: int) -> list[audit.AuditRow]:
    from workroom_app.db import read_session

    with read_session() as session:
        staff.require_staff(session, actor_id)
        return audit.list_rows(session, limit=AUDIT_ROWS)


def _refund_preview(actor_id: int, account_id: int, invoice_id: int, amount: str, reason: str):
    from workroom_app.db import read_session

    with read_session() as session:
        return invoice_refunds.preview(session, actor_id, account_id, invoice_id, amount, reason)


def _refund(actor_id: int, pending: dict[str, Any]) -> invoice_refunds.RefundOutcome:
    from workroom_app.db import get_engine

    return invoice_refunds.refund_invoice(
        get_engine(),
        actor_id,
        pending["account_id"],
        pending["invoice_id"],
        pending["amount_cents"],
        reason=pending["reason"],
        request_id=pending["request_id"],
    )


def _set_role(actor_id: int, account_id: int, role: str, reason: str) -> staff.RoleChange:
    from workroom_app.db import write_session

    with write_session() as session:
        return staff.set_role(session, actor_id, account_id, role, reason=reason)


def _sign_out(actor_id: int, account_id: int, reason: str):
    from workroom_app.billing import staff_queues
    from workroom_app.db import write_session

    with write_session() as session:
        return staff_queues.sign_out_everywhere(session, actor_id, account_id, reason=reason)


def _refused(
    actor_id: int, action: str, message: str, account_id: int | None, target: str | None = None
) -> None:
    from workroom_app.db import get_engine

    audit.record_refusal(
        get_engine(), actor_id, action, message, account_id=account_id, target=target
    )


def _audit_row(row: audit.AuditRow) -> dict[str, str]:
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


class StaffState(SessionState):
    # True only after the server has checked this visitor is staff.
    allowed: bool = False
    loading: bool = False

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
    ledger_rows: list[dict[str, str]] = []
    has_older_rows: bool = False

    # What this staff member's role may do (hides controls; the server checks again).
    my_role: str = ""
    can_adjust: bool = False
    can_refund: bool = False
    can_manage_roles: bool = False
    adjust_limit_text: str = ""
    acc_audit: list[dict[str, str]] = []
    audit_rows: list[dict[str, str]] = []

    refund_open: bool = False
    refund_invoice_label: str = ""
    refund_error: str = ""
    refund_confirm_open: bool = False
    refund_confirm_text: str = ""
    role_error: str = ""
    can_reconcile: bool = False
    can_revoke: bool = False
    acc_sessions: list[dict[str, str]] = []
    acc_emails: list[dict[str, str]] = []
    acc_recent_jobs: list[dict[str, str]] = []
    acc_disputes: list[dict[str, str]] = []
    sessions_error: str = ""
    recon_summary: str = ""
    recon_counts: list[dict[str, str]] = []
    recon_problems: list[dict[str, str]] = []

    adjust_open: bool = False
    adjust_error: str = ""
    confirm_open: bool = False
    confirm_text: str = ""
    confirm_reason: str = ""
    busy: bool = False

    # Server-side only: the browser can neither read nor set these.
    _query: str = ""
    _results_after: int | None = None
    _result_ids: list[int] = []
    _selected_id: int | None = None
    _ledger_before: int | None = None
    _request_id: str | None = None
    _pending: dict[str, Any] | None = None
    _invoice_ids: list[int] = []
    _role: str | None = None
    _refund_invoice_id: int | None = None
    _refund_request_id: str | None = None
    _refund_pending: dict[str, Any] | None = None

    # ------------------------------------------------------------ helpers
    def _forget(self) -> None:
        """Drop everything the dashboard holds (used when the caller is not staff)."""
        self.allowed = False
        self.loading = False
        self.search_error = ""
        self.results = []
        self.has_more_results = False
        self._query = ""
        self._results_after = None
        self._result_ids = []
        self._clear_selection()

    def _clear_selection(self) -> None:
        self.selected = False
        self.detail_error = ""
        for name in (
            "acc_id",
            "acc_email",
            "acc_name",
            "acc_role",
            "acc_created",
            "acc_balance",
            "acc_plan",
            "acc_subscription",
            "acc_period_end",
        ):
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
        self.sessions_error = ""
        self._invoice_ids = []
        self.role_error = ""
        self._close_adjustment()
        self._close_refund()

    def _close_adjustment(self) -> None:
        self.adjust_open = False
        self.adjust_error = ""
        self.confirm_open = False
        self.confirm_text = ""
        self.confirm_reason = ""
        self.busy = False
        self._request_id = None
        self._pending = None

    def _close_refund(self) -> None:
        self.refund_open = False
        self.refund_invoice_label = ""
        self.refund_error = ""
        self.refund_confirm_open = False
        self.refund_confirm_text = ""
        self._refund_invoice_id = None
        self._refund_request_id = None
        self._refund_pending = None

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
        self._role = await asyncio.to_thread(_role_of, self._account_id)
        self._set_role_flags()
        return self._account_id

    def _refusal(self) -> list:
        if self._account_id is None:
            return [rx.redirect(LOGIN_ROUTE, replace=True)]
        return [rx.toast.error(NOT_STAFF), rx.redirect(LANDING_ROUTE, replace=True)]

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
            {
                "id": str(inv.id),
                "number": inv.number or "No number (failed attempt)",
                "date": staff.format_time(inv.created_at),
                "kind": inv.kind,
                "status": inv.status,
                "status_label": invoice_refunds.refund_label(
                    inv.status, inv.amount_cents, refunded.get(inv.id, 0)
                ),
                "amount": _money(inv.amount_cents, inv.currency),
                "refundable": "yes"
                if inv.status in invoice_refunds.REFUNDABLE_STATUSES
                and inv.amount_cents > refunded.get(inv.id, 0)
                else "",
            }
            for inv in overview.invoices
        ]
        self._invoice_ids = [inv.id for inv in overview.invoices]
        self.acc_audit = [_audit_row(r) for r in audit_rows]
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
            overview, page, extras = await asyncio.to_thread(_details, actor_id, account_id)
        except StaffOnly:
            # Demoted between two queries: the next event is refused anyway.
            self._forget()
            return
        except StaffError as exc:
            self.detail_error = str(exc)
            return
        self._show_details(overview, page, extras)
        # After an action: the audit list and the balance in the results follow.
        self.audit_rows = [_audit_row(r) for r in await asyncio.to_thread(_recent_audit, actor_id)]
        self.results = [
            {**row, "balance": self.acc_balance} if row["id"] == self.acc_id else row
            for row in self.results
        ]

    # -------------------------------------------------------------- events
    async def load(self):
        """on_load (after the login guard): staff only; lists the first accounts."""
        self._forget()
        if self._account_id is None:  # signed out: the guard has redirected
            return None
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        self.allowed = True
        try:
            self.audit_rows = [_audit_row(r) for r in await asyncio.to_thread(_recent_audit, actor)]
            # ?q=<email> (links from the overview): search for it, open it when it is the only match.
            wanted = self.router.url.query_parameters.get("q", "")
            query = staff.check_query(wanted if isinstance(wanted, str) else "")
            await self._run_search(actor, query)
            if query and len(self._result_ids) == 1:
                overview, page, extras = await asyncio.to_thread(
                    _details, actor, self._result_ids[0]
                )
                self._show_details(overview, page, extras)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.search_error = str(exc)
        return None

    async def search(self, form_data: dict):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        try:
            query = staff.check_query(_field(form_data, "query"))
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
            overview, page, extras = await asyncio.to_thread(_details, actor, wanted)
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

    async def open_adjustment(self):
        """Open the adjustment form; its request id makes the eventual
        adjustment idempotent."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if self._selected_id is None or self.busy:
            return None
        if not self.can_adjust:
            message = staff_roles.REFUSALS[Permission.ADJUST]
            await asyncio.to_thread(_refused, actor, audit.ADJUST, message, self._selected_id)
            return rx.toast.error(message)
        self._close_adjustment()
        self._close_refund()
        self._request_id = secrets.token_urlsafe(16)
        self.adjust_open = True
        return None

    async def close_adjustment(self):
        if self.busy:
            return None
        self._close_adjustment()
        return None

    async def review_adjustment(self, form_data: dict):
        """Check the form and open the confirmation dialog with what it will do."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id, request_id = self._selected_id, self._request_id
        if account_id is None or request_id is None or not self.adjust_open or self.busy:
            return rx.toast.error("Open the adjustment form first.")
        try:
            amount = _field(form_data, "amount")
            reason = _field(form_data, "reason")
            preview = await asyncio.to_thread(_preview, actor, account_id, amount, reason)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.adjust_error = str(exc)
            self._pending = None
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(_refused, actor, audit.ADJUST, str(exc), account_id)
            return None
        self.adjust_error = ""
        self._pending = {
            "account_id": preview.account_id,
            "amount": preview.amount,
            "reason": preview.reason,
            "request_id": request_id,
        }
        self.confirm_text = preview.summary
        self.confirm_reason = preview.reason
        self.confirm_open = True
        return None

    async def set_confirm_open(self, value: bool):
        """The dialog's own open/close (Escape, overlay): closing only."""
        if value is not True and not self.busy:
            self.confirm_open = False
            self._pending = None

    async def confirm_adjustment(self):
        """Apply what the dialog showed (no arguments: it was kept on the server)."""
        pending = self._pending
        if pending is None or self.busy:
            return
        actor = await self._actor()
        if actor is None:
            for event in self._refusal():
                yield event
            return
        if pending["account_id"] != self._selected_id:
            self._close_adjustment()
            return
        self.busy = True
        yield
        try:
            result = await asyncio.to_thread(_apply, actor, pending)
        except StaffOnly:
            self._forget()
            for event in self._refusal():
                yield event
            return
        except StaffError as exc:
            self.busy = False
            self.confirm_open = False
            self._pending = None
            self.adjust_error = str(exc)
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(
                    _refused, actor, audit.ADJUST, str(exc), pending["account_id"]
                )
            await self._reload_details(actor)
            self.adjust_open = True
            yield rx.toast.error(str(exc))
            return
        except Exception:
            logger.exception("staff adjustment failed")
            self.busy = False
            self.confirm_open = False
            self._pending = None
            self.adjust_error = (
                "Something went wrong on our side. Nothing was changed; please try again."
            )
            yield rx.toast.error(self.adjust_error)
            return
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
            yield rx.toast.info("This adjustment was already applied.")
            return
        verb = "Added" if result.amount > 0 else "Removed"
        preposition = "to" if result.amount > 0 else "from"
        yield rx.toast.success(
            f"{verb} {abs(result.amount):,} credits {preposition} {result.email}. "
            f"New balance: {result.balance_after:,}."
        )

    # ------------------------------------------------------------- refunds
    async def open_refund(self, invoice_id: str):
        """Open the refund form for one of the selected account's invoices
        (only ids this server listed for it are accepted)."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if not self.can_refund:
            message = staff_roles.REFUSALS[Permission.REFUND]
            await asyncio.to_thread(_refused, actor, audit.REFUND, message, self._selected_id)
            return rx.toast.error(message)
        try:
            wanted = staff.check_id(invoice_id, "invoice")
        except StaffError as exc:
            return rx.toast.error(str(exc))
        if self._selected_id is None or wanted not in self._invoice_ids or self.busy:
            return rx.toast.error("That invoice was not found on this account.")
        self._close_refund()
        self._close_adjustment()
        row = next((r for r in self.acc_invoices if r["id"] == str(wanted)), None)
        self._refund_invoice_id = wanted
        self._refund_request_id = secrets.token_urlsafe(16)
        self.refund_invoice_label = (
            f"{row['number']} · {row['amount']} · {row['status_label']}" if row else ""
        )
        self.refund_open = True
        return None

    async def close_refund(self):
        if not self.busy:
            self._close_refund()

    async def review_refund(self, form_data: dict):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id, invoice_id = self._selected_id, self._refund_invoice_id
        if account_id is None or invoice_id is None or self._refund_request_id is None or self.busy:
            return rx.toast.error("Open the refund form first.")
        try:
            amount = _field(form_data, "amount")
            reason = _field(form_data, "reason")
            preview = await asyncio.to_thread(
                _refund_preview, actor, account_id, invoice_id, amount, reason
            )
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.refund_error = str(exc)
            self._refund_pending = None
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(
                    _refused, actor, audit.REFUND, str(exc), account_id, f"invoice:{invoice_id}"
                )
            return None
        self.refund_error = ""
        self._refund_pending = {
            "account_id": preview.account_id,
            "invoice_id": preview.invoice_id,
            "amount_cents": preview.amount_cents,
            "reason": preview.reason,
            "request_id": self._refund_request_id,
        }
        self.refund_confirm_text = preview.summary
        self.refund_confirm_open = True
        return None

    async def set_refund_confirm_open(self, value: bool):
        if value is not True and not self.busy:
            self.refund_confirm_open = False
            self._refund_pending = None

    async def confirm_refund(self):
        """Carry out what the dialog showed (kept on the server, no arguments)."""
        pending = self._refund_pending
        if pending is None or self.busy:
            return
        actor = await self._actor()
        if actor is None:
            for event in self._refusal():
                yield event
            return
        if pending["account_id"] != self._selected_id:
            self._close_refund()
            return
        self.busy = True
        yield
        try:
            outcome = await asyncio.to_thread(_refund, actor, pending)
        except StaffOnly:
            self._forget()
            for event in self._refusal():
                yield event
            return
        except StaffError as exc:
            self.busy = False
            self.refund_confirm_open = False
            self._refund_pending = None
            self.refund_error = str(exc)
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(
                    _refused,
                    actor,
                    audit.REFUND,
                    str(exc),
                    pending["account_id"],
                    f"invoice:{pending['invoice_id']}",
                )
            yield rx.toast.error(str(exc))
            return
        except Exception:
            logger.exception("staff refund failed")
            self.busy = False
            self.refund_confirm_open = False
            self.refund_error = (
                "Something went wrong on our side. Confirm again to retry the same refund."
            )
            yield rx.toast.error(self.refund_error)
            return
        self.busy = False
        self._close_refund()
        await self._reload_details(actor)
        if outcome.status != invoice_refunds.SUCCEEDED:
            yield rx.toast.error(outcome.message)
        elif not outcome.created:
            yield rx.toast.info(outcome.message)
        else:
            yield rx.toast.success(outcome.message)

    # --------------------------------------------------------------- roles
    async def change_role(self, form_data: dict):
        """Admins only: give the selected account a role, with a reason."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id = self._selected_id
        if account_id is None:
            return None
        try:
            role = _field(form_data, "role")
            reason = _field(form_data, "reason")
            change = await asyncio.to_thread(_set_role, actor, account_id, role, reason)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self.role_error = str(exc)
            if isinstance(exc, NotAllowed):
                await asyncio.to_thread(_refused, actor, audit.SET_ROLE, str(exc), account_id)
            return None
        self.role_error = ""
        await self._reload_details(actor)
        if not change.changed:
            return rx.toast.info(f"{change.email} already has the role {change.new_role}.")
        return rx.toast.success(f"{change.email} is now {change.new_role} (was {change.old_role}).")

    async def refresh_audit(self):
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        self.audit_rows = [_audit_row(r) for r in await asyncio.to_thread(_recent_audit, actor)]
        return None

    # ------------------------------------------------------- reconciliation
    async def run_reconciliation(self, form_data: dict):
        """Finance and admin: match every payment with its grant and charge."""
        from datetime import UTC, datetime

        from workroom_app.billing import reconcile

        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if not self.can_reconcile:
            message = staff_roles.REFUSALS[Permission.RECONCILE]
            await asyncio.to_thread(_refused, actor, audit.RECONCILE, message, None)
            return rx.toast.error(message)
        since = None
        try:
            text = _field(form_data, "since").strip()
            if text:
                since = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except (StaffError, ValueError):
            return rx.toast.error(
                "Enter the start date as YYYY-MM-DD, or leave it empty for all payments."
            )
        from workroom_app.db import get_engine

        try:
            report = await asyncio.to_thread(
                reconcile.run_for_staff, get_engine(), actor, since=since
            )
        except StaffError as exc:
            return rx.toast.error(str(exc))
        self.recon_summary = (
            f"{report.payments_checked:,} payments checked, {report.payments_matched:,} matched, "
            f"{len(report.problems):,} problems."
        )
        self.recon_counts = [
            {"label": reconcile.KINDS.get(kind, kind), "count": f"{count:,}"}
            for kind, count in sorted(report.counts().items())
        ]
        self.recon_problems = [
            {"label": p.label, "detail": p.detail, "account": str(p.account_id or "")}
            for p in report.problems[:100]
        ]
        return rx.toast.success("Reconciliation finished: nothing wrong.") if report.ok else None

    # ------------------------------------------------------------ sessions
    async def sign_out_everywhere(self, form_data: dict):
        """Support and admin: revoke every live login of the selected account."""
        from workroom_app.billing import staff_queues

        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id = self._selected_id
        if account_id is None:
            return None
        if not self.can_revoke:
            message = staff_roles.REFUSALS[Permission.REVOKE_SESSIONS]
            await asyncio.to_thread(_refused, actor, audit.REVOKE_SESSIONS, message, account_id)
            return rx.toast.error(message)
        try:
            reason = _field(form_data, "reason")
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
