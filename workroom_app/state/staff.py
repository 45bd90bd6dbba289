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

from workroom_app.billing import staff
from workroom_app.billing.staff import StaffError, StaffOnly
from workroom_app.state.session import LANDING_ROUTE, LOGIN_ROUTE, SessionState, format_credits

logger = logging.getLogger(__name__)

SEARCH_PAGE = 20
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


def _details(actor_id: int, account_id: int) -> tuple[staff.AccountOverview, staff.StaffLedgerPage]:
    from workroom_app.db import read_session

    with read_session() as session:
        overview = staff.account_overview(session, actor_id, account_id)
        page = staff.recent_ledger(session, actor_id, account_id, limit=LEDGER_PAGE)
        return overview, page


def _older(actor_id: int, account_id: int, before_id: int) -> staff.StaffLedgerPage:
    from workroom_app.db import read_session

    with read_session() as session:
        return staff.recent_ledger(session, actor_id, account_id, before_id=before_id, limit=LEDGER_PAGE)


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
            part for part in (row.reason or "", f"by {row.actor_email}" if row.actor_email else "") if part
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
        for name in ("acc_id", "acc_email", "acc_name", "acc_role", "acc_created", "acc_balance",
                     "acc_plan", "acc_subscription", "acc_period_end"):
            setattr(self, name, "")
        self.acc_jobs_total = "0"
        self.acc_jobs = []
        self.acc_invoices = []
        self.ledger_rows = []
        self.has_older_rows = False
        self._selected_id = None
        self._ledger_before = None
        self._close_adjustment()

    def _close_adjustment(self) -> None:
        self.adjust_open = False
        self.adjust_error = ""
        self.confirm_open = False
        self.confirm_text = ""
        self.confirm_reason = ""
        self.busy = False
        self._request_id = None
        self._pending = None

    async def _actor(self) -> int | None:
        """The signed-in staff member's id, re-checked now; None (and the
        dashboard emptied) for anybody else."""
        if self._account_id is None or not await self._reload_account() or not self.is_staff:
            self._forget()
            return None
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

    def _show_details(self, overview: staff.AccountOverview, page: staff.StaffLedgerPage) -> None:
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
        self.acc_invoices = [
            {
                "number": inv.number,
                "date": staff.format_time(inv.created_at),
                "kind": inv.kind,
                "status": inv.status,
                "amount": _money(inv.amount_cents, inv.currency),
            }
            for inv in overview.invoices
        ]
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
            overview, page = await asyncio.to_thread(_details, actor_id, account_id)
        except StaffOnly:
            # Demoted between two queries: the next event is refused anyway.
            self._forget()
            return
        except StaffError as exc:
            self.detail_error = str(exc)
            return
        self._show_details(overview, page)

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
            await self._run_search(actor, "")
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
            overview, page = await asyncio.to_thread(_details, actor, wanted)
        except StaffOnly:
            self._forget()
            return self._refusal()
        except StaffError as exc:
            self._clear_selection()
            self.detail_error = str(exc)
            return rx.toast.error(str(exc))
        self._clear_selection()
        self._show_details(overview, page)
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
        self.ledger_rows = [*self.ledger_rows, *(_ledger_row(r) for r in page.rows)][:MAX_LEDGER_ROWS]
        self._ledger_before = page.next_before_id
        self.has_older_rows = page.next_before_id is not None and len(self.ledger_rows) < MAX_LEDGER_ROWS
        return None

    async def open_adjustment(self):
        """Open the adjustment form; its request id makes the eventual
        adjustment idempotent."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        if self._selected_id is None or self.busy:
            return None
        self._close_adjustment()
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
            await self._reload_details(actor)
            self.adjust_open = True
            yield rx.toast.error(str(exc))
            return
        except Exception:
            logger.exception("staff adjustment failed")
            self.busy = False
            self.confirm_open = False
            self._pending = None
            self.adjust_error = "Something went wrong on our side. Nothing was changed; please try again."
            yield rx.toast.error(self.adjust_error)
            return
        self._close_adjustment()
        await self._reload_details(actor)
        # The results list shows balances too: keep the adjusted one current.
        self.results = [
            {**row, "balance": format_credits(result.balance_after)}
            if row["id"] == str(result.account_id) else row
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

    # ------------------------------------------------- security (issue 8): log out everywhere
    async def log_out_account_everywhere(self):
        """End every session of the account being looked at (a stolen cookie, a lost laptop).

        Staff only, re-checked in the database in the same transaction; takes no argument: it
        acts on the account this dashboard opened, never on an id the browser sends."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        account_id = self._selected_id
        if account_id is None:
            return rx.toast.error("Open an account first.")
        try:
            ended = await asyncio.to_thread(_log_out_everywhere, actor, account_id)
        except StaffOnly:
            self._forget()
            return self._refusal()
        noun = "session" if ended == 1 else "sessions"
        return rx.toast.success(f"{self.acc_email} was logged out everywhere ({ended} {noun} ended).")


def _log_out_everywhere(actor_id: int, account_id: int) -> int:
    """Blocking: revoke every session of `account_id` if `actor_id` is (still) staff."""
    from workroom_app.billing import accounts
    from workroom_app.db import write_session
    from workroom_app.models import Account

    with write_session() as session:
        actor = session.get(Account, actor_id)
        if actor is None or not accounts.is_staff(actor) or actor.disabled_at is not None:
            raise StaffOnly("Only staff can do this.")
        ended = accounts.revoke_all_logins(session, account_id)
    logger.info("staff %s logged account %s out everywhere (%s sessions)", actor_id, account_id, ended)
    return ended
