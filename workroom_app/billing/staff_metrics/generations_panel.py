"""The staff overview's generations panel: jobs per feature/model/provider, run time
percentiles, unlimited generations and the top accounts."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from workroom_app.billing import accounts, catalog, clock, staff_rollups
from workroom_app.billing.staff_metrics.ranges import (
    FAILED_JOB_STATUSES,
    SEP,
    TOP_USERS,
    RawRows,
    _aware,
    _day,
    day_of,
)
from workroom_app.generation.jobs import ACTIVE as ACTIVE_JOB_STATUSES
from workroom_app.generation.jobs import DEADLINE_SECONDS
from workroom_app.generation.reports import REPORT_WINDOW
from workroom_app.models import (
    Account,
    GenerationJob,
    ReportStatus,
    ResultReport,
)


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
