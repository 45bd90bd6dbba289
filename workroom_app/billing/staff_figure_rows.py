"""The rows behind each money figure of the staff overview (/staff/rows).

Every figure on the overview links here, and the list it opens is made of
exactly the rows that figure counts, with the same conditions
(billing/staff_metrics/ owns them: ``paid_invoice_conditions``,
``succeeded_refund_conditions``, ``OPEN_DISPUTE``...). The count and the sum
are computed by the database over all matching rows; at most ``MAX_ROWS`` of
them are listed, newest first. tests/state/test_staff_figure_rows_state.py checks,
through the page's event path, that count and sum equal the overview's figure.

Lists:
- ``revenue``: paid invoices created in the range, optionally of one kind
  and only those of a subscription (MRR new = activations, expansion = upgrades);
- ``refunds``: succeeded invoice refunds completed in the range;
- ``subscriptions``: active or past-due subscriptions now, optionally of one
  plan, at their plan's monthly price (past due: with the failed amount);
- ``churn``: subscriptions that ended in the range, at their plan's price;
- ``disputes``: open card disputes and their amount;
- ``credits``: ledger rows of one credits category (granted by source, spent,
  refunded, expired, burned, adjusted by staff, removed by invoice refunds)
  in the range; amounts in credits, the total their sum without sign, as
  the overview counts them. A chart series ("granted", "removed") is the
  sum of its categories;
- ``jobs``: generation jobs created in the range, optionally of one feature,
  model and provider and only the failed or refunded ones (the rates); the
  total is the credits they were charged;
- ``unlimited``: unlimited generations in the range of the accounts now on
  one plan; the total is their list price in credits;
- ``grants``: credit grants still owed now (outstanding credits), optionally
  of one expiry month or "never"; the total is the credits left in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from workroom_app.billing import formatting, staff, staff_metrics
from workroom_app.models import (
    ACTION_LABELS,
    Account,
    CreditGrant,
    GenerationJob,
    Invoice,
    InvoiceRefund,
    LedgerEntry,
    PaymentDispute,
    Subscription,
)

MAX_ROWS = 200
LISTS = (
    "revenue",
    "refunds",
    "subscriptions",
    "churn",
    "disputes",
    "credits",
    "jobs",
    "unlimited",
    "grants",
)
JOB_OUTCOMES = ("failed", "refunded")
SUBSCRIPTION_STATUSES = ("active", "past_due")


@dataclass(frozen=True)
class Row:
    id: str
    when: datetime | None
    account_id: int | None
    email: str
    label: str  # the invoice kind, the plan, the dispute reason...
    status: str
    amount_cents: int
    detail: str = ""


@dataclass
class FigureRows:
    count: int = 0
    total_cents: int = 0  # for the credits list: credits
    rows: list[Row] = field(default_factory=list)
    # "money" (cents), "credits" (signed ledger amounts) or "credit_amounts"
    # (what a job cost, a list price, what is left in a grant)
    unit: str = "money"

    @property
    def truncated(self) -> bool:
        return self.count > len(self.rows)


def _emails(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    found = session.execute(select(Account.id, Account.email).where(Account.id.in_(wanted)))
    return {account_id: email for account_id, email in found}


def revenue(
    session: Session,
    actor_id: int,
    start: datetime,
    end: datetime,
    *,
    kind: str | None = None,
    subscription_only: bool = False,
) -> FigureRows:
    staff.require_staff(session, actor_id)
    where = staff_metrics.paid_invoice_conditions(start, end)
    if kind:
        where.append(Invoice.kind == kind)
    if subscription_only:
        where.append(Invoice.subscription_id.is_not(None))
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(Invoice.amount_cents), 0)).where(*where)
    ).one()
    invoices = list(
        session.execute(
            select(Invoice)
            .where(*where)
            .order_by(Invoice.created_at.desc(), Invoice.id.desc())
            .limit(MAX_ROWS)
        ).scalars()
    )
    emails = _emails(session, {i.account_id for i in invoices})
    return FigureRows(
        int(count),
        int(total),
        [
            Row(
                id=str(i.id),
                when=i.created_at,
                account_id=i.account_id,
                email=emails.get(i.account_id, ""),
                label=i.kind,
                status=i.status,
                amount_cents=i.amount_cents,
                detail=" · ".join(p for p in (i.number or "", i.plan_key or "", i.gateway) if p),
            )
            for i in invoices
        ],
    )


def refunds(session: Session, actor_id: int, start: datetime, end: datetime) -> FigureRows:
    staff.require_staff(session, actor_id)
    where = staff_metrics.succeeded_refund_conditions(start, end)
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(InvoiceRefund.amount_cents), 0)).where(*where)
    ).one()
    found = list(
        session.execute(
            select(InvoiceRefund, Invoice.number)
            .join(Invoice, Invoice.id == InvoiceRefund.invoice_id)
            .where(*where)
            .order_by(InvoiceRefund.completed_at.desc(), InvoiceRefund.id.desc())
            .limit(MAX_ROWS)
        ).all()
    )
    emails = _emails(session, {r.account_id for r, _ in found})
    return FigureRows(
        int(count),
        int(total),
        [
            Row(
                id=str(r.id),
                when=r.completed_at,
                account_id=r.account_id,
                email=emails.get(r.account_id, ""),
                label=number or f"invoice {r.invoice_id}",
                status=r.origin,
                amount_cents=r.amount_cents,
                detail=r.reason,
            )
            for r, number in found
        ],
    )


def _priced_subscriptions(
    session: Session, where: list, *, with_failed: bool = False
) -> FigureRows:
    prices = staff_metrics.plan_prices()
    subs = list(
        session.execute(
            select(Subscription).where(*where).order_by(Subscription.id.desc())
        ).scalars()
    )
    failed: dict[int, int] = {}
    if with_failed and subs:
        # The failed amount of a past-due subscription: its latest failed invoice.
        ids = [s.id for s in subs]
        for chunk in range(0, len(ids), 500):
            for sub_id, amount in session.execute(
                select(Invoice.subscription_id, Invoice.amount_cents)
                .where(
                    Invoice.subscription_id.in_(ids[chunk : chunk + 500]),
                    Invoice.status == "failed",
                )
                .order_by(Invoice.created_at, Invoice.id)
            ):
                failed[sub_id] = amount  # ordered: the latest wins
    emails = _emails(session, {s.account_id for s in subs[:MAX_ROWS]})
    rows = []
    for s in subs[:MAX_ROWS]:
        detail = ""
        if with_failed and s.id in failed:
            detail = f"failed payment {formatting.format_money(failed[s.id])}"
            if s.next_retry_at is not None:
                detail += f", next retry {staff.format_time(s.next_retry_at)}"
        rows.append(
            Row(
                id=str(s.id),
                when=s.ended_at if s.status == "ended" else s.current_period_end,
                account_id=s.account_id,
                email=emails.get(s.account_id, ""),
                label=staff.plan_name(s.plan_key),
                status=s.status.replace("_", " "),
                amount_cents=prices.get(s.plan_key, 0),
                detail=detail,
            )
        )
    return FigureRows(len(subs), sum(prices.get(s.plan_key, 0) for s in subs), rows)


def subscriptions(
    session: Session, actor_id: int, *, status: str, plan: str | None = None
) -> FigureRows:
    """Active (MRR, active by plan) or past-due subscriptions now, at their plan's
    monthly price: the count and sum equal the overview's figure."""
    staff.require_staff(session, actor_id)
    if status not in SUBSCRIPTION_STATUSES:
        raise staff.StaffError("Choose active or past due subscriptions.")
    where = [Subscription.status == status]
    if plan:
        where.append(Subscription.plan_key == plan)
    return _priced_subscriptions(session, where, with_failed=status == "past_due")


def churn(session: Session, actor_id: int, start: datetime, end: datetime) -> FigureRows:
    staff.require_staff(session, actor_id)
    return _priced_subscriptions(session, staff_metrics.churn_conditions(start, end))


def credits(
    session: Session, actor_id: int, start: datetime, end: datetime, category: str
) -> FigureRows:
    staff.require_staff(session, actor_id)
    conditions = staff_metrics.credit_category_conditions(category)
    if conditions is None:
        raise staff.StaffError("There is no such credits figure.")
    where = [*conditions, LedgerEntry.created_at >= start, LedgerEntry.created_at < end]
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(func.abs(LedgerEntry.amount)), 0)).where(*where)
    ).one()
    entries = list(
        session.execute(
            select(LedgerEntry)
            .where(*where)
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .limit(MAX_ROWS)
        ).scalars()
    )
    emails = _emails(session, {e.account_id for e in entries})
    return FigureRows(
        int(count),
        int(total),
        [
            Row(
                id=str(e.id),
                when=e.created_at,
                account_id=e.account_id,
                email=emails.get(e.account_id, ""),
                label=ACTION_LABELS.get(e.action_type, e.action_type),
                status="",
                amount_cents=e.amount,
                detail=e.reason or "",
            )
            for e in entries
        ],
        unit="credits",
    )


def disputes(session: Session, actor_id: int) -> FigureRows:
    staff.require_staff(session, actor_id)
    where = [PaymentDispute.status.not_in(staff_metrics.CLOSED_DISPUTE_STATUSES)]
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(PaymentDispute.amount_cents), 0)).where(*where)
    ).one()
    found = list(
        session.execute(
            select(PaymentDispute)
            .where(*where)
            .order_by(PaymentDispute.created_at.desc(), PaymentDispute.id)
            .limit(MAX_ROWS)
        ).scalars()
    )
    emails = _emails(session, {d.account_id for d in found})
    return FigureRows(
        int(count),
        int(total),
        [
            Row(
                id=d.id,
                when=d.created_at,
                account_id=d.account_id,
                email=emails.get(d.account_id, "") if d.account_id else "",
                label=d.reason or "dispute",
                status=d.status.replace("_", " "),
                amount_cents=d.amount_cents,
                detail=d.charge_id,
            )
            for d in found
        ],
    )


def _job_rows(session: Session, jobs: list[GenerationJob], amounts: dict[int, int]) -> list[Row]:
    emails = _emails(session, {j.account_id for j in jobs})
    return [
        Row(
            id=str(j.id),
            when=j.created_at,
            account_id=j.account_id,
            email=emails.get(j.account_id, ""),
            label=f"{j.feature} · {j.model} · {j.provider}",
            status=j.status.replace("_", " "),
            amount_cents=amounts.get(j.id, j.cost),
            detail=" · ".join(
                p
                for p in (
                    "unlimited" if j.unlimited else "",
                    "credits returned" if j.refund_entry_id is not None else "",
                )
                if p
            ),
        )
        for j in jobs
    ]


def jobs(
    session: Session,
    actor_id: int,
    start: datetime,
    end: datetime,
    *,
    feature: str = "",
    model: str = "",
    provider: str = "",
    outcome: str = "",
) -> FigureRows:
    """The jobs a generations figure counts: the Generations card, a row of the
    table (count and credits), its failed or refunded jobs (the rates)."""
    staff.require_staff(session, actor_id)
    where = [
        *staff_metrics.job_range_conditions(start, end),
        *staff_metrics.job_group_conditions(feature, model, provider),
    ]
    if outcome == "failed":
        where.append(staff_metrics.job_failed_condition())
    elif outcome == "refunded":
        where.append(staff_metrics.job_refunded_condition())
    elif outcome:
        raise staff.StaffError("Choose failed or refunded jobs.")
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(GenerationJob.cost), 0)).where(*where)
    ).one()
    found = list(
        session.execute(
            select(GenerationJob)
            .where(*where)
            .order_by(GenerationJob.created_at.desc(), GenerationJob.id.desc())
            .limit(MAX_ROWS)
        ).scalars()
    )
    return FigureRows(int(count), int(total), _job_rows(session, found, {}), "credit_amounts")


def unlimited(
    session: Session, actor_id: int, start: datetime, end: datetime, plan: str
) -> FigureRows:
    """The unlimited generations of accounts now on `plan`, at list price: the
    row of "unlimited generations by plan"."""
    staff.require_staff(session, actor_id)
    found = staff_metrics.unlimited_jobs(session, start, end, plan)
    newest = found[::-1][:MAX_ROWS]
    prices = {job_id: cost for job_id, _a, _p, cost in newest}
    by_id = (
        {
            j.id: j
            for j in session.execute(
                select(GenerationJob).where(GenerationJob.id.in_(list(prices)))
            ).scalars()
        }
        if prices
        else {}
    )
    listed = [by_id[job_id] for job_id, *_ in newest if job_id in by_id]
    return FigureRows(
        len(found),
        sum(cost for *_, cost in found),
        _job_rows(session, listed, prices),
        "credit_amounts",
    )


def grants(session: Session, actor_id: int, now: datetime, month: str = "") -> FigureRows:
    """Outstanding credits now: open grants with credits left, of one expiry month
    ("YYYY-MM" or "never") or all; the total is what is left in them."""
    staff.require_staff(session, actor_id)
    where = staff_metrics.outstanding_grant_conditions(now)
    if month:
        where += staff_metrics.expiry_month_conditions(session, month)
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(CreditGrant.amount_left), 0)).where(*where)
    ).one()
    found = list(
        session.execute(
            select(CreditGrant)
            .where(*where)
            .order_by(CreditGrant.expires_at.is_(None), CreditGrant.expires_at, CreditGrant.id)
            .limit(MAX_ROWS)
        ).scalars()
    )
    emails = _emails(session, {g.account_id for g in found})
    return FigureRows(
        int(count),
        int(total),
        [
            Row(
                id=str(g.id),
                when=g.expires_at,
                account_id=g.account_id,
                email=emails.get(g.account_id, ""),
                label=ACTION_LABELS.get(g.source, g.source.replace("_", " ").capitalize()),
                status="expires" if g.expires_at else "never expires",
                amount_cents=g.amount_left,
                detail=f"left of {g.amount_granted:,} granted {staff.format_time(g.created_at)}",
            )
            for g in found
        ],
        "credit_amounts",
    )
