"""The staff overview's credits panel: ledger rows by UTC day and category, and the
credits outstanding in live grants by expiry month."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from workroom_app.billing import staff_rollups
from workroom_app.billing.staff_metrics.ranges import (
    SEP,
    RawRows,
    day_of,
)
from workroom_app.models import (
    ActionType,
    CreditGrant,
    LedgerEntry,
)

CATEGORIES = (
    "granted_trial",
    "granted_subscription",
    "granted_monthly",
    "granted_plan_change",
    "granted_staff",
    "spent",
    "refunded",
    "expired",
    "burned",
    "adjusted_down",
    "removed_by_invoice_refund",
)


# What the overview calls each category.
CATEGORY_LABELS = {
    "granted_trial": "Trial",
    "granted_subscription": "Subscription",
    "granted_monthly": "Monthly",
    "granted_plan_change": "Upgrades",
    "granted_staff": "Staff added",
    "spent": "Spent",
    "refunded": "Refunded (failed generations)",
    "expired": "Expired",
    "burned": "Burned (downgrades)",
    "adjusted_down": "Staff removed",
    "removed_by_invoice_refund": "Removed by invoice refunds",
}


def category_label(category: str) -> str:
    if category in SERIES_LABELS:
        return SERIES_LABELS[category]
    return CATEGORY_LABELS.get(category, category.replace("_", " ").capitalize())


def credit_category(action_type: str, amount: int, reference_type: str | None) -> str:
    if action_type == ActionType.TRIAL_GRANT:
        return "granted_trial"
    if action_type == ActionType.SUBSCRIPTION_CREDITS:
        return "granted_subscription"
    if action_type == ActionType.MONTHLY_CREDITS:
        return "granted_monthly"
    if action_type == ActionType.PLAN_CHANGE:
        return "granted_plan_change" if amount > 0 else "burned"
    if action_type == ActionType.GENERATION:
        return "spent"
    if action_type == ActionType.REFUND:
        return "refunded"
    if action_type == ActionType.EXPIRY:
        return "expired"
    if action_type == ActionType.STAFF_ADJUSTMENT:
        if reference_type == "invoice_refund":
            return "removed_by_invoice_refund"
        return "granted_staff" if amount > 0 else "adjusted_down"
    # A kind added later (e.g. credit packs) still shows, under its own name.
    return f"{'granted' if amount > 0 else 'taken'}_{action_type}"


# The per-day credits chart draws a few series, each the sum of some categories:
# "granted" every granted_* category (any source), "removed" what staff and
# invoice refunds took. The chart and its rows (/staff/rows) both use this.
CHART_SERIES = ("granted", "spent", "refunded", "expired", "burned", "removed")
SERIES_LABELS = {
    "granted": "Granted (every source)",
    "removed": "Removed by staff and invoice refunds",
}


def chart_series(category: str) -> str | None:
    """The chart series a credits category is drawn in (None: not drawn)."""
    if category.startswith("granted"):
        return "granted"
    if category in ("adjusted_down", "removed_by_invoice_refund"):
        return "removed"
    return category if category in CHART_SERIES else None


def _series_conditions(series: str) -> list | None:
    if series == "removed":
        parts = [
            credit_category_conditions(c) for c in ("adjusted_down", "removed_by_invoice_refund")
        ]
    elif series == "granted":
        parts = [
            credit_category_conditions(c)
            for c in (
                "granted_trial",
                "granted_subscription",
                "granted_monthly",
                "granted_plan_change",
                "granted_staff",
            )
        ]
        # granted_<any other action type> (see credit_category)
        parts.append([LedgerEntry.action_type.not_in(_NAMED_ACTIONS), LedgerEntry.amount > 0])
    else:
        return None
    return [or_(*(and_(*p) for p in parts if p))]


_NAMED_ACTIONS = frozenset(
    {
        ActionType.TRIAL_GRANT,
        ActionType.SUBSCRIPTION_CREDITS,
        ActionType.MONTHLY_CREDITS,
        ActionType.GENERATION,
        ActionType.REFUND,
        ActionType.EXPIRY,
        ActionType.PLAN_CHANGE,
        ActionType.STAFF_ADJUSTMENT,
    }
)


def credit_category_conditions(category: str) -> list | None:
    """The ledger rows `credit_category` puts in `category` (or a chart series puts
    in `series`, see CHART_SERIES), as SQL conditions (what /staff/rows lists for a
    credits figure); None for a name that is no category."""
    if category in ("granted", "removed"):
        return _series_conditions(category)
    action, amount, ref = LedgerEntry.action_type, LedgerEntry.amount, LedgerEntry.reference_type
    not_refund = or_(ref.is_(None), ref != "invoice_refund")
    fixed = {
        "granted_trial": [action == ActionType.TRIAL_GRANT],
        "granted_subscription": [action == ActionType.SUBSCRIPTION_CREDITS],
        "granted_monthly": [action == ActionType.MONTHLY_CREDITS],
        "granted_plan_change": [action == ActionType.PLAN_CHANGE, amount > 0],
        "burned": [action == ActionType.PLAN_CHANGE, amount <= 0],
        "spent": [action == ActionType.GENERATION],
        "refunded": [action == ActionType.REFUND],
        "expired": [action == ActionType.EXPIRY],
        "removed_by_invoice_refund": [
            action == ActionType.STAFF_ADJUSTMENT,
            ref == "invoice_refund",
        ],
        "granted_staff": [action == ActionType.STAFF_ADJUSTMENT, not_refund, amount > 0],
        "adjusted_down": [action == ActionType.STAFF_ADJUSTMENT, not_refund, amount <= 0],
    }
    if category in fixed:
        return fixed[category]
    # Any other action type: "granted_<type>" / "taken_<type>" (see credit_category).
    sign, _, other = category.partition("_")
    if sign not in ("granted", "taken") or not other or other in _NAMED_ACTIONS:
        return None
    return [action == other, amount > 0 if sign == "granted" else amount <= 0]


@dataclass
class CreditsPanel:
    by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    outstanding_by_expiry_month: dict[str, int] = field(default_factory=dict)
    outstanding_total: int = 0


NEVER_EXPIRES = "never"  # the outstanding credits of grants without an expiry date


def expiry_month_of(session: Session) -> ColumnElement:
    """A grant's UTC expiry month as 'YYYY-MM' (NULL: never expires), computed by
    the database (no timestamp parsing per grant here)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", CreditGrant.expires_at), "YYYY-MM")
    return func.substr(CreditGrant.expires_at, 1, 7)


def outstanding_grant_conditions(now: datetime) -> list:
    """Outstanding credits: what is left in open grants not yet expired at `now`."""
    return [
        CreditGrant.amount_left > 0,
        CreditGrant.closed_at.is_(None),
        # expired, waiting for the sweep: no longer owed
        or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > now),
    ]


def expiry_month_conditions(session: Session, month: str) -> list:
    """The grants of one bar of "outstanding by expiry month" ("never" included)."""
    if month == NEVER_EXPIRES:
        return [CreditGrant.expires_at.is_(None)]
    return [expiry_month_of(session) == month]


def _credit_rows(session: Session, start: datetime, end: datetime) -> RawRows:
    """Ledger rows per day, action type, sign and whether an invoice refund took them."""
    day = day_of(session, LedgerEntry.created_at)
    positive = case((LedgerEntry.amount > 0, 1), else_=-1)
    by_refund = case((LedgerEntry.reference_type == "invoice_refund", "invoice_refund"), else_="")
    rows = session.execute(
        select(
            day,
            LedgerEntry.action_type,
            positive,
            by_refund,
            func.sum(func.abs(LedgerEntry.amount)),
        )
        .where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        .group_by(day, LedgerEntry.action_type, positive, by_refund)
    )
    return [
        (d, f"{action}{SEP}{ref or ''}", int(sign), int(total))
        for d, action, sign, ref, total in rows
    ], set()


def credits(session: Session, start: datetime, end: datetime, now: datetime) -> CreditsPanel:
    panel = CreditsPanel()
    by_day: dict[str, Counter] = defaultdict(Counter)
    for d, key, sign, total in staff_rollups.read(
        session, "credits", _credit_rows, start, end, now
    ):
        action, ref_type = key.split(SEP)
        by_day[d][credit_category(action, sign, ref_type or None)] += total
    panel.by_day = {d: dict(c) for d, c in sorted(by_day.items())}
    totals: Counter = Counter()
    for c in by_day.values():
        totals.update(c)
    panel.totals = dict(sorted(totals.items()))
    month = expiry_month_of(session)
    months: Counter = Counter()
    for expiry_month, left in session.execute(
        select(month, func.sum(CreditGrant.amount_left))
        .where(*outstanding_grant_conditions(now))
        .group_by(month)
    ):
        months[NEVER_EXPIRES if expiry_month is None else expiry_month] += int(left)
    panel.outstanding_by_expiry_month = dict(sorted(months.items()))
    panel.outstanding_total = sum(months.values())
    return panel
