"""The staff overview's figures, for a date range [start, end) in UTC.

Plain Python over the rows of the ledger, the invoices (and refunds), the
subscriptions and the generation jobs: each panel selects the rows of the
range with one query and sums them here, so what a figure means is written
once, in this file, and tests/billing/test_staff_metrics.py checks every figure
against independent SQL over the same tables on both engines.

Definitions (README "Decisions"):
- Revenue: paid invoices (status paid or refunded: a refund is shown as its
  own series, not subtracted) by the UTC day they were created and by kind.
  Kinds are whatever the invoices say, so a new kind shows without changes.
- Refunds: succeeded invoice refunds by the UTC day they completed.
- MRR now: the monthly price of every active subscription (past due ones are
  shown apart with the amount they owe). Movement in the range: new = paid
  activations; expansion = paid upgrades (the price difference); contraction =
  for each paid downgrade, the previous plan's price minus the new one's;
  churn = the plan price of subscriptions that ended in the range.
- Credits per day: ledger rows by UTC day and category: granted (by action
  type), spent (generations), refunded (failed generations), expired, burned
  (plan change down), adjusted (staff, net), removed by invoice refunds.
  Outstanding: credits left in live grants by expiry month ("never" apart).
- Generations: jobs created in the range, per feature/model/provider: count,
  credits charged, failures (failed, rejected, timed out), refunds, and the
  p50/p95 of run time (finished − started) of succeeded jobs (nearest rank).
  Unlimited generations by the account's current plan, with their list price
  (the catalog's price without the plan's unlimited), and the top accounts.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, overload

from sqlalchemy import SQLColumnExpression, and_, case, func, literal_column, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from workroom_app.billing import accounts, catalog, clock, staff_rollups
from workroom_app.generation.jobs import ACTIVE as ACTIVE_JOB_STATUSES
from workroom_app.generation.jobs import DEADLINE_SECONDS
from workroom_app.generation.reports import REPORT_WINDOW
from workroom_app.models import (
    Account,
    ActionType,
    CreditGrant,
    GenerationJob,
    Invoice,
    InvoiceRefund,
    LedgerEntry,
    PaymentDispute,
    ReportStatus,
    ResultReport,
    Subscription,
)

PAID_STATUSES = ("paid", "refunded")
FAILED_JOB_STATUSES = ("failed", "rejected", "timed_out")
DEFAULT_DAYS = 30
MAX_DAYS = 400
TOP_USERS = 10


RawRows = tuple[list[staff_rollups.Row], set[str]]  # staff_rollups.RawQuery's answer


@overload
def _aware(value: datetime) -> datetime: ...


@overload
def _aware(value: None) -> None: ...


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _day(value: datetime) -> str:
    return _aware(value).astimezone(UTC).date().isoformat()


def day_of(session: Session, column: SQLColumnExpression[datetime]) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column, as 'YYYY-MM-DD', computed by
    the database so a panel groups rows there instead of reading them all."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text.
    return func.substr(column, 1, 10)


def default_range(now: datetime, days: int = DEFAULT_DAYS) -> tuple[datetime, datetime]:
    """The last `days` whole UTC days up to and including today."""
    today = now.astimezone(UTC).date()
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return end - timedelta(days=days), end


def parse_range(start_text: object, end_text: object, now: datetime) -> tuple[datetime, datetime]:
    """A range from two YYYY-MM-DD strings (end inclusive); ValueError with a message."""
    if not isinstance(start_text, str) or not isinstance(end_text, str):
        raise ValueError("Enter the dates as YYYY-MM-DD.")
    if not start_text.strip() and not end_text.strip():
        return default_range(now)
    try:
        start = date.fromisoformat(start_text.strip())
        end = date.fromisoformat(end_text.strip())
    except ValueError:
        raise ValueError("Enter the dates as YYYY-MM-DD.") from None
    if end < start:
        raise ValueError("The end date must not be before the start date.")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"Choose at most {MAX_DAYS} days.")
    return (
        datetime.combine(start, datetime.min.time(), tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
    )


def plan_prices() -> dict[str, int]:
    """Each plan's monthly price in cents, from today's catalog."""
    return {p.key: p.price_cents for p in catalog.get_catalog().plans}


# What each money figure counts, written once: the overview sums these rows and
# /staff/rows (billing/staff_figure_rows.py) lists the same ones.
CLOSED_DISPUTE_STATUSES = ("won", "lost", "warning_closed")


def paid_invoice_conditions(start: datetime, end: datetime) -> list:
    """Revenue: paid invoices (a refunded one stays revenue) created in [start, end)."""
    return [
        Invoice.status.in_(PAID_STATUSES),
        Invoice.created_at >= start,
        Invoice.created_at < end,
    ]


def succeeded_refund_conditions(start: datetime, end: datetime) -> list:
    """Refunds: succeeded invoice refunds completed in [start, end)."""
    return [
        InvoiceRefund.status == "succeeded",
        InvoiceRefund.completed_at >= start,
        InvoiceRefund.completed_at < end,
    ]


def churn_conditions(start: datetime, end: datetime) -> list:
    """Churn: subscriptions that ended in [start, end)."""
    return [
        Subscription.status == "ended",
        Subscription.ended_at >= start,
        Subscription.ended_at < end,
    ]


# -------------------------------------------------------------------- money


@dataclass
class MoneyPanel:
    revenue_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    revenue_by_kind: dict[str, int] = field(default_factory=dict)
    revenue_total: int = 0
    refunds_by_day: dict[str, int] = field(default_factory=dict)
    refunds_total: int = 0
    mrr_now: int = 0
    mrr_new: int = 0
    mrr_expansion: int = 0
    mrr_contraction: int = 0
    mrr_churn: int = 0
    active_by_plan: dict[str, int] = field(default_factory=dict)
    past_due_count: int = 0
    past_due_cents: int = 0
    open_disputes: int = 0
    open_dispute_cents: int = 0


SEP = "\x1f"  # joins the parts of a rollup key (never in a kind, plan, action or model name)


def _revenue_rows(session: Session, start: datetime, end: datetime) -> RawRows:
    """Paid invoices per day, kind and whether they belong to a subscription."""
    day = day_of(session, Invoice.created_at)
    with_subscription = case((Invoice.subscription_id.is_not(None), 1), else_=0)
    rows = session.execute(
        select(day, Invoice.kind, with_subscription, func.sum(Invoice.amount_cents))
        .where(*paid_invoice_conditions(start, end))
        .group_by(day, Invoice.kind, with_subscription)
    )
    return [(d, kind, int(sub), int(amount)) for d, kind, sub, amount in rows], set()


def _downgrade_rows(session: Session, start: datetime, end: datetime) -> RawRows:
    """Paid downgrades of subscriptions per day and (previous plan, new plan): the
    previous plan is the plan of the subscription's previous paid invoice."""
    prev = aliased(Invoice)
    previous_plan = (
        select(prev.plan_key)
        .where(
            prev.subscription_id == Invoice.subscription_id,
            prev.status.in_(PAID_STATUSES),
            or_(
                prev.created_at < Invoice.created_at,
                and_(prev.created_at == Invoice.created_at, prev.id < Invoice.id),
            ),
        )
        .order_by(prev.created_at.desc(), prev.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    counts: Counter = Counter()
    for d, plan_key, before in session.execute(
        select(day_of(session, Invoice.created_at), Invoice.plan_key, previous_plan).where(
            *paid_invoice_conditions(start, end),
            Invoice.subscription_id.is_not(None),
            Invoice.kind == "downgrade",
        )
    ):
        counts[(d, f"{before or ''}{SEP}{plan_key or ''}")] += 1
    return [(d, key, 0, n) for (d, key), n in counts.items()], set()


def money(
    session: Session, start: datetime, end: datetime, now: datetime | None = None
) -> MoneyPanel:
    now = now or clock.now()
    prices = plan_prices()
    panel = MoneyPanel()
    by_day: dict[str, Counter] = defaultdict(Counter)
    for d, kind, with_subscription, amount in staff_rollups.read(
        session, "revenue", _revenue_rows, start, end, now
    ):
        by_day[d][kind] += amount
        if with_subscription and kind == "activation":
            panel.mrr_new += amount
        elif with_subscription and kind == "upgrade":
            panel.mrr_expansion += amount
    panel.revenue_by_day = {d: dict(c) for d, c in sorted(by_day.items())}
    kinds: Counter = Counter()
    for c in by_day.values():
        kinds.update(c)
    panel.revenue_by_kind = dict(sorted(kinds.items()))
    panel.revenue_total = sum(kinds.values())

    refunds: Counter = Counter()
    for completed_at, amount in session.execute(
        select(InvoiceRefund.completed_at, InvoiceRefund.amount_cents).where(
            *succeeded_refund_conditions(start, end)
        )
    ):
        refunds[_day(completed_at)] += amount
    panel.refunds_by_day = dict(sorted(refunds.items()))
    panel.refunds_total = sum(refunds.values())

    active: Counter = Counter()
    for plan_key, status, count in session.execute(
        select(Subscription.plan_key, Subscription.status, func.count())
        .where(Subscription.status.in_(("active", "past_due")))
        .group_by(Subscription.plan_key, Subscription.status)
    ):
        if status == "active":
            active[plan_key] += count
            panel.mrr_now += prices.get(plan_key, 0) * count
        else:
            panel.past_due_count += count
            panel.past_due_cents += prices.get(plan_key, 0) * count
    panel.active_by_plan = dict(sorted(active.items()))
    for plan_key, count in session.execute(
        select(Subscription.plan_key, func.count())
        .where(*churn_conditions(start, end))
        .group_by(Subscription.plan_key)
    ):
        panel.mrr_churn += prices.get(plan_key, 0) * count

    # Contraction from (previous plan, new plan) counts, priced with today's catalog.
    for _d, plans, _bucket, count in staff_rollups.read(
        session, "downgrade", _downgrade_rows, start, end, now
    ):
        before, after = plans.split(SEP)
        if before:
            panel.mrr_contraction += count * max(0, prices.get(before, 0) - prices.get(after, 0))

    for status, amount in session.execute(
        select(PaymentDispute.status, PaymentDispute.amount_cents)
    ):
        if status not in CLOSED_DISPUTE_STATUSES:
            panel.open_disputes += 1
            panel.open_dispute_cents += amount
    return panel


# ------------------------------------------------------------------ credits

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


# -------------------------------------------------------------- generations


@dataclass
class GenerationGroup:
    feature: str
    model: str
    provider: str
    count: int = 0
    credits: int = 0
    failed: int = 0
    refunded: int = 0
    p50_seconds: float | None = None
    p95_seconds: float | None = None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.count if self.count else 0.0

    @property
    def refund_rate(self) -> float:
        return self.refunded / self.count if self.count else 0.0


@dataclass
class GenerationsPanel:
    groups: list[GenerationGroup] = field(default_factory=list)
    total: int = 0
    unlimited_by_plan: dict[str, dict[str, int]] = field(default_factory=dict)
    top_unlimited_users: list[dict[str, object]] = field(default_factory=list)


def _list_cost(params_json: str, plan_key: str) -> int:
    cat = catalog.get_catalog()
    params = json.loads(params_json)
    for plan in (plan_key, "studio"):
        try:
            return int(cat.quote(params, plan).list_cost)
        except Exception:  # noqa: BLE001  (a retired model or plan: try the widest plan, else unknown)
            continue
    return 0


# Jobs change until they are final: their day waits for the longest deadline
# and the report window (a report refunds within 24 h of the result).
JOB_SETTLE = timedelta(seconds=max(DEADLINE_SECONDS.values())) + REPORT_WINDOW
JOB_METRICS = ("count", "credits", "failed", "refunded")  # the bucket of a "jobs" rollup row
_JOB_KEYS = (GenerationJob.feature, GenerationJob.model, GenerationJob.provider)


def job_range_conditions(start: datetime, end: datetime) -> list:
    """Generations: jobs created in [start, end)."""
    return [GenerationJob.created_at >= start, GenerationJob.created_at < end]


def job_failed_condition() -> ColumnElement:
    """A job counted in the failure rate."""
    return GenerationJob.status.in_(FAILED_JOB_STATUSES)


def job_refunded_condition() -> ColumnElement:
    """A job counted in the refund rate: its credits came back."""
    return GenerationJob.refund_entry_id.is_not(None)


def job_group_conditions(feature: str, model: str, provider: str) -> list:
    """One row of the generations table (empty parts: any)."""
    parts = zip(_JOB_KEYS, (feature, model, provider), strict=True)
    return [column == value for column, value in parts if value]


def _unsettled_job_days(session: Session, start: datetime, end: datetime) -> set[str]:
    """Days with a job still queued or running, or with a report waiting for staff.
    Both are few: read through their status indexes, not the range's jobs."""
    active: ColumnElement[bool] = GenerationJob.status.in_(ACTIVE_JOB_STATUSES)
    if session.get_bind().dialect.name == "sqlite":
        # Few jobs are ever active at once, but ANALYZE's average over the few
        # statuses makes SQLite scan every job: say how rare they are.
        active = func.likelihood(active, literal_column("0.0001"))
    created = list(session.execute(select(GenerationJob.created_at).where(active)).scalars())
    # Two steps, not a join: a join may be planned as a scan of every job.
    pending = list(
        session.execute(
            select(ResultReport.job_id).where(ResultReport.status == ReportStatus.PENDING)
        ).scalars()
    )
    for chunk in range(0, len(pending), 500):
        created += session.execute(
            select(GenerationJob.created_at).where(
                GenerationJob.id.in_(pending[chunk : chunk + 500])
            )
        ).scalars()
    return {_day(c) for c in created if start <= _aware(c) < end}


def _job_rows(session: Session, start: datetime, end: datetime) -> RawRows:
    """Jobs per day and feature/model/provider: count, credits, failed, refunded."""
    day = day_of(session, GenerationJob.created_at)
    rows = []
    for d, feature, model, provider, count, credits_, failed, refunded in session.execute(
        select(
            day,
            *_JOB_KEYS,
            func.count(),
            func.coalesce(func.sum(GenerationJob.cost), 0),
            func.sum(case((job_failed_condition(), 1), else_=0)),
            func.sum(case((job_refunded_condition(), 1), else_=0)),
        )
        .where(*job_range_conditions(start, end))
        .group_by(day, *_JOB_KEYS)
    ):
        key = SEP.join((feature, model, provider))
        for metric, value in enumerate((count, credits_, failed, refunded)):
            rows.append((d, key, metric, int(value or 0)))
    return rows, _unsettled_job_days(session, start, end)


def _runtime_rows(session: Session, start: datetime, end: datetime) -> RawRows:
    """Run times (finished − started, whole milliseconds, computed by the database)
    of succeeded jobs per day and feature/model/provider: (ms, how many)."""
    seconds: ColumnElement[Any]
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", GenerationJob.finished_at - GenerationJob.started_at)
    else:
        seconds = (
            func.julianday(GenerationJob.finished_at) - func.julianday(GenerationJob.started_at)
        ) * 86400
    day = day_of(session, GenerationJob.created_at)
    ms = func.round(seconds * 1000)
    rows = session.execute(
        select(day, *_JOB_KEYS, ms, func.count())
        .where(
            *job_range_conditions(start, end),
            GenerationJob.status == "succeeded",
            GenerationJob.started_at.is_not(None),
            GenerationJob.finished_at.is_not(None),
        )
        .group_by(day, *_JOB_KEYS, ms)
    )
    return (
        [(d, SEP.join((f, m, p)), int(round(float(x))), int(n)) for d, f, m, p, x, n in rows],
        _unsettled_job_days(session, start, end),
    )


def unlimited_jobs(
    session: Session, start: datetime, end: datetime, plan: str | None = None
) -> list[tuple[int, int, str, int]]:
    """Unlimited generations created in [start, end): (job id, account, the account's
    current plan, list price in credits), oldest first; only those of `plan` if given.
    The plan is the account's plan now, so it is decided here, not in SQL."""
    plan_of: dict[int, str] = {}
    out = []
    for job_id, account_id, params in session.execute(
        select(GenerationJob.id, GenerationJob.account_id, GenerationJob.params_json)
        .where(*job_range_conditions(start, end), GenerationJob.unlimited.is_(True))
        .order_by(GenerationJob.id)
    ):
        if account_id not in plan_of:
            plan_of[account_id] = accounts.current_plan_key(session, account_id)
        key = plan_of[account_id]
        if plan is None or key == plan:
            out.append((job_id, account_id, key, _list_cost(params, key)))
    return out


def percentile_of_counts(counts: Counter[int], p: float) -> float | None:
    """Nearest rank over run times given as {milliseconds: how many}: the smallest
    with at least p% of them at or below it, in seconds."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for ms in sorted(counts):
        seen += counts[ms]
        if seen >= rank:
            return ms / 1000
    return None


def generations(
    session: Session, start: datetime, end: datetime, now: datetime | None = None
) -> GenerationsPanel:
    now = now or clock.now()
    panel = GenerationsPanel()
    groups: dict[str, GenerationGroup] = {}
    for _d, key, metric, value in staff_rollups.read(
        session, "jobs", _job_rows, start, end, now, JOB_SETTLE, by_day=False
    ):
        group = groups.get(key)
        if group is None:
            feature, model, provider = key.split(SEP)
            group = groups[key] = GenerationGroup(feature, model, provider)
        setattr(group, JOB_METRICS[metric], getattr(group, JOB_METRICS[metric]) + value)
    durations: dict[str, Counter] = defaultdict(Counter)
    for _d, key, ms, count in staff_rollups.read(
        session, "job_runtime", _runtime_rows, start, end, now, JOB_SETTLE, by_day=False
    ):
        durations[key][ms] += count
    for key, group in groups.items():
        group.p50_seconds = percentile_of_counts(durations[key], 50)
        group.p95_seconds = percentile_of_counts(durations[key], 95)
    panel.groups = sorted(groups.values(), key=lambda g: (-g.count, g.feature, g.model, g.provider))
    panel.total = sum(g.count for g in panel.groups)

    plan_of: dict[int, str] = {}
    by_plan: dict[str, Counter] = defaultdict(Counter)
    by_user: dict[int, Counter] = defaultdict(Counter)
    for _job_id, account_id, plan, cost in unlimited_jobs(session, start, end):
        plan_of[account_id] = plan
        by_plan[plan].update({"count": 1, "list_credits": cost})
        by_user[account_id].update({"count": 1, "list_credits": cost})
    panel.unlimited_by_plan = {p: dict(c) for p, c in sorted(by_plan.items())}
    top = sorted(by_user.items(), key=lambda kv: (-kv[1]["count"], kv[0]))[:TOP_USERS]
    emails = (
        dict(
            session.execute(
                select(Account.id, Account.email).where(Account.id.in_([a for a, _ in top]))
            ).all()
        )
        if top
        else {}
    )
    panel.top_unlimited_users = [
        {
            "account_id": a,
            "email": emails.get(a, ""),
            "plan": plan_of[a],
            "count": c["count"],
            "list_credits": c["list_credits"],
        }
        for a, c in top
    ]
    return panel


@dataclass
class Overview:
    start: datetime
    end: datetime
    money: MoneyPanel
    credits: CreditsPanel
    generations: GenerationsPanel


def overview(session: Session, start: datetime, end: datetime, now: datetime) -> Overview:
    return Overview(
        start,
        end,
        money(session, start, end, now),
        credits(session, start, end, now),
        generations(session, start, end, now),
    )
