"""The rows behind an overview figure (/staff/rows?list=...): the paid
invoices behind revenue, the refunds, the subscriptions behind MRR and past
due, the subscriptions that churned, the open disputes. The rows and their
count and sum are billing/staff_figure_rows.py's; this state reads the
address, checks it, and formats.

The address is written by the browser, so every parameter is checked: the
list's name, dates as YYYY-MM-DD (as the overview's range), a kind or plan
of at most 32 letters, digits and underscores, a known status. Anything else
shows a message and no rows. Every event re-checks that the caller is staff.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import reflex as rx

from workroom_app.billing import clock, formatting, staff, staff_figure_rows, staff_metrics
from workroom_app.billing.staff import StaffError, StaffOnly
from workroom_app.db import read_session
from workroom_app.routes import (
    LANDING_ROUTE,
    LOGIN_ROUTE,
    STAFF_ACCOUNTS_ROUTE,
    STAFF_ROWS_ROUTE,
)
from workroom_app.state.session import SessionState

NOT_STAFF = "The staff dashboard is for staff members only."
BAD_ADDRESS = "This list's address is not one the overview links to. Go back to the overview."
_KEY = re.compile(r"^[a-z0-9_]{1,32}$")
PARAMETERS = ("list", "from", "to", "kind", "plan", "status", "sub", "category")


def rows_href(list_name: str, **params: str) -> str:
    """The address of a list (what the overview links to); empty values are left out."""
    query = {"list": list_name, **{k: v for k, v in params.items() if v}}
    return f"{STAFF_ROWS_ROUTE}?{urlencode(query)}"


@dataclass(frozen=True)
class Request:
    list_name: str
    start_text: str = ""
    end_text: str = ""
    kind: str = ""
    plan: str = ""
    status: str = ""
    subscription_only: bool = False
    category: str = ""


def parse_request(params: dict) -> Request:
    """The list asked for by the address; StaffError with BAD_ADDRESS otherwise."""

    def text(name: str) -> str:
        value = params.get(name, "")
        if not isinstance(value, str) or len(value) > 32:
            raise StaffError(BAD_ADDRESS)
        return value.strip()

    list_name = text("list")
    if list_name not in staff_figure_rows.LISTS:
        raise StaffError(BAD_ADDRESS)
    kind, plan, status, sub = text("kind"), text("plan"), text("status"), text("sub")
    category = text("category")
    if list_name == "credits" and not category:
        raise StaffError(BAD_ADDRESS)
    for value in (kind, plan, category):
        if value and not _KEY.match(value):
            raise StaffError(BAD_ADDRESS)
    if status and status not in staff_figure_rows.SUBSCRIPTION_STATUSES:
        raise StaffError(BAD_ADDRESS)
    if sub not in ("", "1"):
        raise StaffError(BAD_ADDRESS)
    return Request(list_name, text("from"), text("to"), kind, plan, status, sub == "1", category)


def _title(req: Request, start_text: str, end_text: str) -> str:
    period = f" from {start_text} to {end_text} (UTC)"
    if req.list_name == "revenue":
        what = "Paid invoices"
        if req.kind:
            what += f" of kind \u201c{req.kind}\u201d"
        if req.subscription_only:
            what += " of subscriptions"
        return what + period
    if req.list_name == "refunds":
        return "Invoice refunds" + period
    if req.list_name == "churn":
        return "Subscriptions that ended" + period
    if req.list_name == "disputes":
        return "Open card disputes (now)"
    if req.list_name == "credits":
        return f"Credits: {staff_metrics.category_label(req.category)}" + period
    what = "Past-due subscriptions" if req.status == "past_due" else "Active subscriptions"
    return what + (f" on {staff.plan_name(req.plan)}" if req.plan else "") + " (now)"


def _read(actor_id: int, req: Request) -> tuple[str, staff_figure_rows.FigureRows]:
    now = clock.now()
    try:
        start, end = staff_metrics.parse_range(req.start_text, req.end_text, now)
    except ValueError as exc:
        raise StaffError(str(exc)) from None
    last_day = (end - timedelta(days=1)).date()
    title = _title(req, formatting.format_date(start.date()), formatting.format_date(last_day))
    with read_session() as session:
        if req.list_name == "revenue":
            found = staff_figure_rows.revenue(
                session,
                actor_id,
                start,
                end,
                kind=req.kind or None,
                subscription_only=req.subscription_only,
            )
        elif req.list_name == "refunds":
            found = staff_figure_rows.refunds(session, actor_id, start, end)
        elif req.list_name == "churn":
            found = staff_figure_rows.churn(session, actor_id, start, end)
        elif req.list_name == "disputes":
            found = staff_figure_rows.disputes(session, actor_id)
        elif req.list_name == "credits":
            found = staff_figure_rows.credits(session, actor_id, start, end, req.category)
        else:
            found = staff_figure_rows.subscriptions(
                session, actor_id, status=req.status or "active", plan=req.plan or None
            )
    return title, found


def _amount(value: int, unit: str) -> str:
    if unit == "credits":
        return f"+{value:,}" if value > 0 else f"\u2212{-value:,}"
    return formatting.format_money(value)


def _row(r: staff_figure_rows.Row, unit: str) -> dict[str, str]:
    return {
        "id": r.id,
        "when": staff.format_time(r.when) if r.when else "",
        "email": r.email,
        "account_href": f"{STAFF_ACCOUNTS_ROUTE}?" + urlencode({"q": r.email}) if r.email else "",
        "label": r.label,
        "status": r.status,
        "amount": _amount(r.amount_cents, unit),
        "detail": r.detail,
    }


class StaffFigureRowsState(SessionState):
    allowed: bool = False
    error: str = ""
    title: str = ""
    count_text: str = ""
    total_text: str = ""
    truncated_text: str = ""
    rows: list[dict[str, str]] = []

    async def load(self):
        """on_load: staff only; the list the address names."""
        self.allowed = False
        self.rows = []
        self.title = self.count_text = self.total_text = self.truncated_text = ""
        if self._account_id is None:
            return None
        if not await self._reload_account() or not self.is_staff:
            return [rx.toast.error(NOT_STAFF), rx.redirect(LANDING_ROUTE, replace=True)]
        actor = self._account_id
        try:
            query = self.router.url.query_parameters
            req = parse_request({name: query.get(name, "") for name in PARAMETERS})
            title, found = await asyncio.to_thread(_read, actor, req)
        except StaffOnly:
            if self._account_id is None:
                return rx.redirect(LOGIN_ROUTE, replace=True)
            return [rx.toast.error(NOT_STAFF), rx.redirect(LANDING_ROUTE, replace=True)]
        except StaffError as exc:
            self.allowed = True
            self.error = str(exc)
            return None
        self.allowed = True
        self.error = ""
        self.title = title
        self.count_text = f"{found.count:,}"
        self.total_text = (
            f"{found.total_cents:,} credits"
            if found.unit == "credits"
            else formatting.format_money(found.total_cents)
        )
        self.truncated_text = (
            f"Showing the newest {len(found.rows):,} of {found.count:,}." if found.truncated else ""
        )
        self.rows = [_row(r, found.unit) for r in found.rows]
        return None
