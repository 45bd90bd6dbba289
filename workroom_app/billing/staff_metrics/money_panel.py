"""The staff overview's money panel: revenue, refunds, MRR and its movement, disputes."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from workroom_app.billing import clock, staff_rollups
from workroom_app.billing.staff_metrics.ranges import (
    PAID_STATUSES,
    SEP,
    RawRows,
    _day,
    day_of,
    plan_prices,
)
from workroom_app.models import (
    Invoice,
    InvoiceRefund,
    PaymentDispute,
    Subscription,
)

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
