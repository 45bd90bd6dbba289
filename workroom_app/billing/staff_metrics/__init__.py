"""The staff overview's figures, for a date range [start, end) in UTC.

Plain Python over the rows of the ledger, the invoices (and refunds), the
subscriptions and the generation jobs: each panel selects the rows of the
range with one query and sums them here, so what a figure means is written
once, in this package, and tests/billing/test_staff_metrics.py checks every figure
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

The package: ranges.py (date ranges and shared helpers), then money_panel.py,
credits_panel.py and generations_panel.py (one panel each); this module
re-exports their names, so ``staff_metrics.name`` keeps working, and builds the
whole overview.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta as timedelta  # state/staff_overview.py uses staff_metrics.timedelta

from sqlmodel import Session

from workroom_app.billing.staff_metrics.credits_panel import (  # noqa: F401  (re-exported)
    _NAMED_ACTIONS,
    CATEGORIES,
    CATEGORY_LABELS,
    CHART_SERIES,
    NEVER_EXPIRES,
    SERIES_LABELS,
    CreditsPanel,
    _credit_rows,
    _series_conditions,
    category_label,
    chart_series,
    credit_category,
    credit_category_conditions,
    credits,
    expiry_month_conditions,
    expiry_month_of,
    outstanding_grant_conditions,
)
from workroom_app.billing.staff_metrics.generations_panel import (  # noqa: F401  (re-exported)
    _JOB_KEYS,
    JOB_METRICS,
    JOB_SETTLE,
    GenerationGroup,
    GenerationsPanel,
    _job_rows,
    _list_cost,
    _runtime_rows,
    _unsettled_job_days,
    generations,
    job_failed_condition,
    job_group_conditions,
    job_range_conditions,
    job_refunded_condition,
    percentile_of_counts,
    unlimited_jobs,
)
from workroom_app.billing.staff_metrics.money_panel import (  # noqa: F401  (re-exported)
    CLOSED_DISPUTE_STATUSES,
    MoneyPanel,
    _downgrade_rows,
    _revenue_rows,
    churn_conditions,
    money,
    paid_invoice_conditions,
    succeeded_refund_conditions,
)
from workroom_app.billing.staff_metrics.ranges import (  # noqa: F401  (re-exported)
    DEFAULT_DAYS,
    FAILED_JOB_STATUSES,
    MAX_DAYS,
    PAID_STATUSES,
    SEP,
    TOP_USERS,
    RawRows,
    _aware,
    _day,
    day_of,
    default_range,
    parse_range,
    plan_prices,
)


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
