"""The staff overview (/staff): the business for a date range. The figures
are billing/staff_metrics/'s; this state only formats them.

The browser may send two dates (YYYY-MM-DD); anything else is refused with a
message. Every event re-checks that the caller is staff (billing re-reads the
role); nothing renders before that check (`allowed`).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from workroom_app.billing import clock, formatting, staff, staff_metrics
from workroom_app.billing.staff import StaffError
from workroom_app.db import read_session
from workroom_app.routes import (
    LANDING_ROUTE,
    LOGIN_ROUTE,
    STAFF_ACCOUNTS_ROUTE,
    STAFF_QUEUES_ROUTE,
)
from workroom_app.state.session import SessionState
from workroom_app.state.staff_figure_rows import rows_href

NOT_STAFF = "The staff dashboard is for staff members only."
KIND_LABELS = {
    "activation": "New subscriptions",
    "renewal": "Renewals",
    "upgrade": "Upgrades",
    "downgrade": "Downgrades",
}


_SLICE_COLOURS = (
    "var(--accent-9)",
    "var(--green-9)",
    "var(--amber-9)",
    "var(--cyan-9)",
    "var(--crimson-9)",
    "var(--gray-9)",
)


_usd = formatting.format_money


def _dollars(cents: int) -> float:
    return round(cents / 100, 2)


def _read(actor_id: int, start_text: str, end_text: str) -> staff_metrics.Overview:
    now = clock.now()
    try:
        start, end = staff_metrics.parse_range(start_text, end_text, now)
    except ValueError as exc:
        raise StaffError(str(exc)) from None
    with read_session() as session:
        staff.require_staff(session, actor_id)
        return staff_metrics.overview(session, start, end, now)


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} s"


class StaffOverviewState(SessionState):
    allowed: bool = False
    error: str = ""
    range_start: str = ""
    range_end: str = ""
    range_text: str = ""

    cards: list[dict[str, str]] = []
    revenue_chart: list[dict[str, Any]] = []
    revenue_kinds: list[dict[str, Any]] = []
    revenue_days: list[dict[str, str]] = []
    refunds_text: str = ""
    mrr_cards: list[dict[str, str]] = []
    plans: list[dict[str, str]] = []
    credits_chart: list[dict[str, Any]] = []
    credit_totals: list[dict[str, str]] = []
    credit_days: list[dict[str, str]] = []
    outstanding_chart: list[dict[str, Any]] = []
    outstanding_months: list[dict[str, str]] = []
    generation_rows: list[dict[str, str]] = []
    unlimited_rows: list[dict[str, str]] = []
    top_users: list[dict[str, str]] = []

    def _show(self, o: staff_metrics.Overview) -> None:
        m, c, g = o.money, o.credits, o.generations
        last_day = (o.end - staff_metrics.timedelta(days=1)).date()
        self.range_start, self.range_end = o.start.date().isoformat(), last_day.isoformat()
        self.range_text = (
            f"{formatting.format_date(o.start.date())} to {formatting.format_date(last_day)} (UTC)"
        )
        # Each money figure links to the rows it counts (/staff/rows, same conditions).
        period = {"from": self.range_start, "to": self.range_end}
        self.cards = [
            {
                "label": "Revenue",
                "value": _usd(m.revenue_total),
                "testid": "ov-revenue",
                "href": rows_href("revenue", **period),
            },
            {
                "label": "Refunds",
                "value": _usd(m.refunds_total),
                "testid": "ov-refunds",
                "href": rows_href("refunds", **period),
            },
            {
                "label": "MRR now",
                "value": _usd(m.mrr_now),
                "testid": "ov-mrr",
                "href": rows_href("subscriptions", status="active"),
            },
            {
                "label": "Past due",
                "value": f"{m.past_due_count:,} · {_usd(m.past_due_cents)}",
                "testid": "ov-past-due",
                "href": rows_href("subscriptions", status="past_due"),
            },
            {
                "label": "Open disputes",
                "value": f"{m.open_disputes:,} · {_usd(m.open_dispute_cents)}",
                "testid": "ov-disputes",
                "href": rows_href("disputes"),
            },
            {
                "label": "Outstanding credits",
                "value": f"{c.outstanding_total:,}",
                "testid": "ov-outstanding",
                "href": rows_href("grants"),
            },
            {
                "label": "Generations",
                "value": f"{g.total:,}",
                "testid": "ov-generations",
                "href": rows_href("jobs", **period),
            },
        ]
        days = sorted(set(m.revenue_by_day) | set(m.refunds_by_day))
        self.revenue_chart = [
            {
                "day": d[5:],
                "revenue": _dollars(sum(m.revenue_by_day.get(d, {}).values())),
                "refunds": _dollars(m.refunds_by_day.get(d, 0)),
            }
            for d in days
        ]
        # The same per day as text, each amount a link to its invoices or refunds.
        self.revenue_days = [
            {
                "day": formatting.format_date(date.fromisoformat(d)),
                "revenue": _usd(sum(m.revenue_by_day.get(d, {}).values())),
                "revenue_href": rows_href("revenue", **{"from": d, "to": d}),
                "refunds": _usd(m.refunds_by_day.get(d, 0)),
                "refunds_href": rows_href("refunds", **{"from": d, "to": d}),
            }
            for d in reversed(days)
        ]
        # Any invoice kind shows (credit packs included) under its own name.
        # Each slice its own colour (one fill for all made the pie a single disc).
        self.revenue_kinds = [
            {
                "name": KIND_LABELS.get(k, k.replace("_", " ").capitalize()),
                "value": _dollars(v),
                "text": _usd(v),
                "fill": _SLICE_COLOURS[i % len(_SLICE_COLOURS)],
                "href": rows_href("revenue", kind=k, **period),
            }
            for i, (k, v) in enumerate(m.revenue_by_kind.items())
        ]
        self.mrr_cards = [
            {
                "label": "New",
                "value": _usd(m.mrr_new),
                "href": rows_href("revenue", kind="activation", sub="1", **period),
            },
            {
                "label": "Expansion",
                "value": _usd(m.mrr_expansion),
                "href": rows_href("revenue", kind="upgrade", sub="1", **period),
            },
            {
                # The downgrades behind it (each counts its previous price minus its new one).
                "label": "Contraction",
                "value": _usd(-m.mrr_contraction),
                "href": rows_href("revenue", kind="downgrade", sub="1", **period),
            },
            {"label": "Churn", "value": _usd(-m.mrr_churn), "href": rows_href("churn", **period)},
        ]
        self.plans = [
            {
                "plan": staff.plan_name(k),
                "count": f"{n:,}",
                "href": rows_href("subscriptions", status="active", plan=k),
            }
            for k, n in m.active_by_plan.items()
        ]
        # Each series of the chart sums its categories (staff_metrics.chart_series);
        # the same per day as text, each figure a link to its ledger rows.
        series_by_day: dict[str, dict[str, int]] = {}
        for d, row in c.by_day.items():
            values = dict.fromkeys(staff_metrics.CHART_SERIES, 0)
            for category, v in row.items():
                series = staff_metrics.chart_series(category)
                if series:
                    values[series] += v
            series_by_day[d] = values
        self.credits_chart = [{"day": d[5:], **v} for d, v in series_by_day.items()]
        self.credit_days = [
            {
                "day": formatting.format_date(date.fromisoformat(d)),
                **{k: f"{n:,}" for k, n in v.items()},
                **{
                    f"{k}_href": rows_href("credits", category=k, **{"from": d, "to": d}) for k in v
                },
            }
            for d, v in reversed(series_by_day.items())
        ]
        self.credit_totals = [
            {
                "label": staff_metrics.category_label(k),
                "value": f"{v:,}",
                "href": rows_href("credits", category=k, **period),
            }
            for k, v in c.totals.items()
        ]
        self.outstanding_chart = [
            {"month": k, "credits": v} for k, v in c.outstanding_by_expiry_month.items()
        ]
        self.outstanding_months = [
            {
                "label": "Never expires" if k == staff_metrics.NEVER_EXPIRES else k,
                "value": f"{v:,}",
                "href": rows_href("grants", month=k),
            }
            for k, v in c.outstanding_by_expiry_month.items()
        ]
        # Each count, credits and rate links to the jobs it counts in the range
        # (the rate's link: its failed or refunded jobs, shown with their number).
        self.generation_rows = []
        for x in g.groups:
            group = {"feature": x.feature, "model": x.model, "provider": x.provider, **period}
            self.generation_rows.append(
                {
                    "feature": x.feature,
                    "model": x.model,
                    "provider": x.provider,
                    "count": f"{x.count:,}",
                    "credits": f"{x.credits:,}",
                    "failure": f"{x.failure_rate:.1%} ({x.failed:,})",
                    "refund": f"{x.refund_rate:.1%} ({x.refunded:,})",
                    "p50": _secs(x.p50_seconds),
                    "p95": _secs(x.p95_seconds),
                    "href": rows_href("jobs", **group),
                    "failure_href": rows_href("jobs", outcome="failed", **group),
                    "refund_href": rows_href("jobs", outcome="refunded", **group),
                    "queue_href": f"{STAFF_QUEUES_ROUTE}?"
                    + urlencode({"status": "", "feature": x.feature, "provider": x.provider}),
                }
            )
        self.unlimited_rows = [
            {
                "plan": staff.plan_name(p),
                "count": f"{v.get('count', 0):,}",
                "list": f"{v.get('list_credits', 0):,}",
                "href": rows_href("unlimited", plan=p, **period),
            }
            for p, v in g.unlimited_by_plan.items()
        ]
        self.top_users = [
            {
                "email": str(u["email"]),
                "plan": staff.plan_name(str(u["plan"])),
                "count": f"{u['count']:,}",
                "list": f"{u['list_credits']:,}",
                "href": f"{STAFF_ACCOUNTS_ROUTE}?" + urlencode({"q": str(u["email"])}),
            }
            for u in g.top_unlimited_users
        ]

    async def _load(self, start: str, end: str):
        if self._account_id is None or not await self._reload_account() or not self.is_staff:
            self.allowed = False
            if self._account_id is None:
                return rx.redirect(LOGIN_ROUTE, replace=True)
            return [rx.toast.error(NOT_STAFF), rx.redirect(LANDING_ROUTE, replace=True)]
        try:
            o = await asyncio.to_thread(_read, self._account_id, start, end)
        except StaffError as exc:
            self.error = str(exc)
            return None
        self.allowed = True
        self.error = ""
        self._show(o)
        return None

    async def load(self):
        self.allowed = False
        if self._account_id is None:
            return None
        return await self._load("", "")

    async def apply_range(self, form_data: dict):
        if not isinstance(form_data, dict):
            self.error = "Enter the dates as YYYY-MM-DD."
            return None
        start, end = form_data.get("start", ""), form_data.get("end", "")
        if (
            not isinstance(start, str)
            or not isinstance(end, str)
            or len(start) > 20
            or len(end) > 20
        ):
            self.error = "Enter the dates as YYYY-MM-DD."
            return None
        return await self._load(start, end)
