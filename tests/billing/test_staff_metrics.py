"""The staff overview's figures (billing/staff_metrics/) equal independent
SQL over the same tables, on SQLite and PostgreSQL, after a seeded 12-month
simulation: subscriptions with declines, upgrades, downgrades, cancels,
renewals, failed renewals; generations (failed, refunded, unlimited) with run
times; staff adjustments; invoice refunds."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, text
from sqlmodel import select
from sqlmodel.sql.sqltypes import UTCDateTime

from tests.support.generation import T0, make_account
from tests.support.simulation import START, act
from tests.support.subscriptions import sign_up, subscribe
from workroom_app.billing import (
    accounts,
    catalog,
    clock,
    invoice_refunds,
    ledger,
    staff_metrics,
    staff_rollups,
    subscriptions,
)
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs
from workroom_app.generation.errors import GenerationError
from workroom_app.models import JobStatus, Role, Subscription

REQUESTS = [
    {"feature": "image", "model": "flux_pro", "resolution": "1K", "count": 1, "prompt": "a fox"},
    {
        "feature": "image",
        "model": "flux_schnell",
        "resolution": "1K",
        "count": 2,
        "prompt": "a cat",
    },
    {"feature": "voiceover", "model": "standard", "text": "Hello there, this is Workroom."},
]


def _simulate(engine) -> dict:
    rng = random.Random(1010)
    log: Counter = Counter()
    with clock.pinned(START):
        users = [sign_up(engine, f"m{i}@example.com") for i in range(5)]
        with write_session(engine) as s:
            finance = accounts.sign_up(
                s, "fin@staff.test", "correct horse battery", role=Role.FINANCE
            ).id
            admin = accounts.sign_up(
                s, "adm@staff.test", "correct horse battery", role=Role.ADMIN
            ).id
    for step in range(0, 365, 2):
        moment = START + timedelta(days=step, hours=rng.randint(0, 12))
        with clock.pinned(moment):
            report = subscriptions.renew_due(engine)
            assert report.errors == {}
            for account_id in users:
                if rng.random() < 0.35:
                    act(engine, rng, account_id, step, log)
                if rng.random() < 0.4:
                    try:
                        with write_session(engine) as s:
                            job = jobs.submit(
                                s,
                                account_id,
                                rng.choice(REQUESTS),
                                client_request_id=f"j{step}-{account_id}",
                            )
                            jobs.claim(s, job.id, "w1", lease_seconds=30)
                        job_id = job.id
                    except GenerationError:
                        continue
                    outcome = rng.random()
                    with (
                        clock.pinned(moment + timedelta(seconds=rng.randint(1, 90))),
                        write_session(engine) as s,
                    ):
                        if outcome < 0.2:
                            jobs.fail(
                                s,
                                job_id,
                                rng.choice([JobStatus.FAILED, JobStatus.TIMED_OUT]),
                                "boom",
                            )
                        elif outcome < 0.9:
                            jobs.succeed(s, job_id, "/tmp/x.png", "image/png")
                        # else: still running at the end
                    log["job"] += 1
                if rng.random() < 0.03:
                    with write_session(engine) as s:
                        ledger.staff_adjust(
                            s,
                            account_id,
                            rng.choice([25, -1, 100]) if ledger.balance(s, account_id) else 10,
                            reason="Goodwill",
                            actor_id=admin,
                            idempotency_key=f"adj{step}-{account_id}",
                        )
                    log["adjust"] += 1
            if step % 60 == 30:
                with read_session(engine) as s:
                    from sqlmodel import select

                    from workroom_app.models import Invoice

                    paid = s.exec(select(Invoice).where(Invoice.status == "paid")).all()
                if paid:
                    inv = rng.choice(paid)
                    try:
                        invoice_refunds.refund_invoice(
                            engine,
                            finance,
                            inv.account_id,
                            inv.id,
                            rng.choice(["1.00", "5.00"]),
                            reason="Goodwill refund",
                            request_id=f"refund-{step:04d}",
                        )
                        log["invoice_refund"] += 1
                    except Exception:  # noqa: BLE001  (fully refunded already: fine)
                        pass
    for what in (
        "subscribe_ok",
        "upgrade_ok",
        "downgrade_ok",
        "cancel",
        "job",
        "adjust",
        "invoice_refund",
    ):
        assert log[what] > 0, (what, log)
    return {"users": users}


@pytest.fixture(scope="module")
def _unused():
    return None


def _day_sql(engine, column: str) -> str:
    if engine.dialect.name == "sqlite":
        return f"substr({column}, 1, 10)"
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _q(engine, sql: str, **params):
    stmt = text(sql)
    binds = [
        bindparam(k, type_=UTCDateTime()) for k, v in params.items() if isinstance(v, datetime)
    ]
    if binds:
        stmt = stmt.bindparams(*binds)
    with engine.connect() as conn:
        return conn.execute(stmt, params).all()


@pytest.mark.slow  # every overview figure against hand-written SQL over a year of data
def test_overview_figures_equal_independent_sql(engine):
    _simulate(engine)
    now = START + timedelta(days=366)
    for start, end in [
        (START, START + timedelta(days=366)),
        (START + timedelta(days=100), START + timedelta(days=130)),
        # Again: the closed months' sums stored by the visits above, the other days' rows.
        (START, START + timedelta(days=366)),
        (START + timedelta(days=3), START + timedelta(days=300)),
    ]:
        _assert_overview_equals_sql(engine, start, end, now)
        with read_session(engine) as s:
            assert staff_metrics.money(s, start, end, now).revenue_total > 0
    # The figures above came from closed-day rollups (filled by the first range), and
    # the generations from monthly sums of them (stored by the next visits).
    assert _q(engine, "SELECT COUNT(*) FROM staff_rollup_day WHERE series = 'credits'")[0][0] > 200
    # (A month with a job still running, as most here, is summed day by day.)
    for series in ("jobs:m", "job_runtime:m"):
        months = _q(engine, f"SELECT COUNT(*) FROM staff_rollup_day WHERE series = '{series}'")
        assert months[0][0] >= 1, series


def _assert_overview_equals_sql(engine, start: datetime, end: datetime, now: datetime) -> None:
    """Every figure of the overview for [start, end) equals independent SQL."""
    prices = {p.key: p.price_cents for p in catalog.get_catalog().plans}
    with clock.pinned(now), read_session(engine) as s:
        o = staff_metrics.overview(s, start, end, now)
    p = {"start": start, "end": end}
    m = o.money

    # Revenue per day and kind.
    rows = _q(
        engine,
        f"SELECT {_day_sql(engine, 'created_at')} AS d, kind, SUM(amount_cents) FROM invoice "
        "WHERE status IN ('paid', 'refunded') AND created_at >= :start AND created_at < :end "
        "GROUP BY d, kind",
        **p,
    )
    expected: dict = defaultdict(dict)
    for d, kind, total in rows:
        expected[d][kind] = int(total)
    assert m.revenue_by_day == dict(expected)
    assert m.revenue_total == sum(int(r[2]) for r in rows)
    assert m.revenue_total > 0

    rows = _q(
        engine,
        f"SELECT {_day_sql(engine, 'completed_at')} AS d, SUM(amount_cents) FROM invoice_refund "
        "WHERE status = 'succeeded' AND completed_at >= :start AND completed_at < :end GROUP BY d",
        **p,
    )
    assert m.refunds_by_day == {d: int(t) for d, t in rows}

    rows = _q(
        engine, "SELECT plan_key, status, COUNT(*) FROM subscription GROUP BY plan_key, status"
    )
    assert m.active_by_plan == {k: n for k, st, n in rows if st == "active"}
    assert m.mrr_now == sum(prices[k] * n for k, st, n in rows if st == "active")
    assert (m.past_due_count, m.past_due_cents) == (
        sum(n for k, st, n in rows if st == "past_due"),
        sum(prices[k] * n for k, st, n in rows if st == "past_due"),
    )
    rows = _q(
        engine,
        "SELECT kind, SUM(amount_cents) FROM invoice WHERE status IN ('paid','refunded') "
        "AND subscription_id IS NOT NULL AND created_at >= :start AND created_at < :end GROUP BY kind",
        **p,
    )
    sums = {k: int(t) for k, t in rows}
    assert (m.mrr_new, m.mrr_expansion) == (sums.get("activation", 0), sums.get("upgrade", 0))
    rows = _q(
        engine,
        "SELECT d.plan_key, (SELECT p.plan_key FROM invoice p WHERE p.subscription_id = d.subscription_id "
        "AND p.status IN ('paid','refunded') AND (p.created_at < d.created_at OR "
        "(p.created_at = d.created_at AND p.id < d.id)) ORDER BY p.created_at DESC, p.id DESC LIMIT 1) "
        "FROM invoice d WHERE d.kind = 'downgrade' AND d.status IN ('paid','refunded') "
        "AND d.created_at >= :start AND d.created_at < :end",
        **p,
    )
    assert m.mrr_contraction == sum(
        max(0, prices[prev] - prices[new]) for new, prev in rows if prev
    )
    rows = _q(
        engine,
        "SELECT plan_key FROM subscription WHERE status = 'ended' AND ended_at >= :start AND ended_at < :end",
        **p,
    )
    assert m.mrr_churn == sum(prices[k] for (k,) in rows)

    # Credits per day and category.
    c = o.credits
    rows = _q(
        engine,
        f"SELECT {_day_sql(engine, 'created_at')} AS d, action_type, "
        "CASE WHEN amount > 0 THEN 1 ELSE 0 END AS pos, COALESCE(reference_type, '') = 'invoice_refund', "
        "SUM(ABS(amount)) FROM ledger_entry WHERE created_at >= :start AND created_at < :end "
        "GROUP BY d, action_type, pos, COALESCE(reference_type, '') = 'invoice_refund'",
        **p,
    )
    names = {
        ("trial_grant", 1): "granted_trial",
        ("subscription_credits", 1): "granted_subscription",
        ("monthly_credits", 1): "granted_monthly",
        ("plan_change", 1): "granted_plan_change",
        ("plan_change", 0): "burned",
        ("generation", 0): "spent",
        ("refund", 1): "refunded",
        ("expiry", 0): "expired",
        ("staff_adjustment", 1): "granted_staff",
        ("staff_adjustment", 0): "adjusted_down",
    }
    expected = defaultdict(Counter)
    for d, action, pos, by_refund, total in rows:
        name = "removed_by_invoice_refund" if by_refund else names[(action, pos)]
        expected[d][name] += int(total)
    assert c.by_day == {d: dict(v) for d, v in expected.items()}
    rows = _q(
        engine,
        "SELECT expires_at, amount_left FROM credit_grant WHERE amount_left > 0 AND closed_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > :now)",
        now=now,
    )
    months = Counter()
    for expires_at, left in rows:
        if expires_at is None:
            months["never"] += left
        else:
            value = (
                expires_at
                if isinstance(expires_at, datetime)
                else datetime.fromisoformat(str(expires_at))
            )
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            months[value.strftime("%Y-%m")] += left
    assert c.outstanding_by_expiry_month == dict(months)
    balance_total = _q(engine, "SELECT SUM(balance) FROM account_balance")[0][0]
    # Every credit still spendable is outstanding (none expired unswept at this moment may differ).
    assert c.outstanding_total <= balance_total

    # Generations per feature/model/provider.
    g = o.generations
    rows = _q(
        engine,
        "SELECT feature, model, provider, COUNT(*), SUM(cost), "
        "SUM(CASE WHEN status IN ('failed','rejected','timed_out') THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN refund_entry_id IS NOT NULL THEN 1 ELSE 0 END) FROM generation_job "
        "WHERE created_at >= :start AND created_at < :end GROUP BY feature, model, provider",
        **p,
    )
    assert {
        (x.feature, x.model, x.provider): (x.count, x.credits, x.failed, x.refunded)
        for x in g.groups
    } == {(f, mo, pr): (int(n), int(cr), int(fa), int(re)) for f, mo, pr, n, cr, fa, re in rows}
    rows = _q(
        engine,
        "SELECT feature, model, provider, started_at, finished_at FROM generation_job "
        "WHERE status = 'succeeded' AND created_at >= :start AND created_at < :end",
        **p,
    )
    durations = defaultdict(list)
    for f, mo, pr, started, finished in rows:

        def as_dt(v):
            v = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
            return v.replace(tzinfo=UTC) if v.tzinfo is None else v

        durations[(f, mo, pr)].append((as_dt(finished) - as_dt(started)).total_seconds())
    for x in g.groups:
        values = sorted(durations[(x.feature, x.model, x.provider)])

        def rank(q: float, values: list[float] = values) -> float | None:
            return values[max(0, math.ceil(q * len(values)) - 1)] if values else None

        # The metrics round run times to the millisecond (computed by the database).
        for got, want in ((x.p50_seconds, rank(0.50)), (x.p95_seconds, rank(0.95))):
            assert (got is None and want is None) or abs(got - want) < 0.0015, (x, got, want)
    rows = _q(
        engine,
        "SELECT COUNT(*) FROM generation_job WHERE unlimited AND created_at >= :start AND created_at < :end"
        if engine.dialect.name == "postgresql"
        else "SELECT COUNT(*) FROM generation_job WHERE unlimited = 1 AND created_at >= :start AND created_at < :end",
        **p,
    )
    assert sum(v["count"] for v in g.unlimited_by_plan.values()) == rows[0][0]
    assert sum(u["count"] for u in g.top_unlimited_users) <= rows[0][0]


def test_range_parsing_refuses_bad_input():
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert staff_metrics.parse_range("", "", now) == staff_metrics.default_range(now)
    assert staff_metrics.default_range(now)[1] - staff_metrics.default_range(now)[0] == timedelta(
        days=30
    )
    for start, end in [
        ("2026-13-01", "2026-12-01"),
        ("2026-02-01", "2026-01-01"),
        ("2020-01-01", "2026-01-01"),
        (1, 2),
    ]:
        with pytest.raises(ValueError):
            staff_metrics.parse_range(start, end, now)


def test_rollups_filled_once_then_today_grows_and_a_second_fill_adds_nothing(engine):
    """Closed days come from the rollup tables, today from the raw rows: figures
    stay equal to SQL after more rows are written today, a second fill of the
    same days (a concurrent visit) counts nothing twice, and a day with a job
    still running is not closed for the job series."""
    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    base = today - timedelta(days=8)
    with clock.pinned(base):
        users = [sign_up(engine, f"r{i}@example.com") for i in range(3)]
        assert subscribe(engine, users[0], "pro").ok
    running_day = None
    for day in range(7):
        with clock.pinned(base + timedelta(days=day, hours=1)), write_session(engine) as s:
            ledger.debit(s, users[1], 1 + day, feature="image", idempotency_key=f"roll-gen-{day}")
            job = jobs.submit(
                s,
                users[0] if day == 3 else users[2],
                REQUESTS[day % 2],
                client_request_id=f"roll-{day}",
            )
            jobs.claim(s, job.id, "w1", lease_seconds=30)
            job_id = job.id
        if day == 3:
            running_day = (base + timedelta(days=day)).date().isoformat()
            continue  # still running: its day stays open for the job series
        with (
            clock.pinned(base + timedelta(days=day, hours=1, seconds=5 + day)),
            write_session(engine) as s,
        ):
            if day == 5:
                jobs.fail(s, job_id, JobStatus.FAILED, "boom")
            else:
                jobs.succeed(s, job_id, "/tmp/x.png", "image/png")
    start = datetime.combine(base.date(), datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(today.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    _assert_overview_equals_sql(engine, start, end, today)
    filled = {(series, d) for series, d in _q(engine, "SELECT series, day FROM staff_rollup_day")}
    closed = (base + timedelta(days=1)).date().isoformat()
    assert ("credits", closed) in filled and ("revenue", base.date().isoformat()) in filled
    assert ("jobs", closed) in filled and ("jobs", running_day) not in filled
    assert ("credits", today.date().isoformat()) not in filled

    # More rows today (not closed): the next visit adds them from the raw rows.
    with clock.pinned(today), write_session(engine) as s:
        ledger.debit(s, users[1], 7, feature="image", idempotency_key="roll-gen-today")
        jobs.submit(s, users[2], REQUESTS[0], client_request_id="roll-today")
    with clock.pinned(today):
        assert subscribe(engine, users[1], "starter").ok
    rows_before = _q(engine, "SELECT COUNT(*), SUM(value) FROM staff_rollup")[0]
    _assert_overview_equals_sql(engine, start, end, today)
    # A second fill of days already filled (as a concurrent visit would do) loses
    # on the day marker and changes nothing.
    with read_session(engine) as s:
        staff_rollups._fill(s, "credits", staff_metrics._credit_rows(s, start, end)[0], [closed])
    assert _q(engine, "SELECT COUNT(*), SUM(value) FROM staff_rollup")[0] == rows_before
    _assert_overview_equals_sql(engine, start, end, today)


def test_the_scheduler_warm_up_fills_the_closed_days_before_any_staff_visit(engine):
    """staff_rollups.warm (run hourly by the billing scheduler) stores the closed days of
    every series, so the first staff visit reads them instead of filling them; a second
    warm-up stores nothing new."""
    from workroom_app.billing import staff_rollups

    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    base = today - timedelta(days=5)
    with clock.pinned(base):
        user = sign_up(engine, "warm@example.com")
        assert subscribe(engine, user, "pro").ok
    for day in range(4):
        with clock.pinned(base + timedelta(days=day, hours=1)), write_session(engine) as s:
            ledger.debit(s, user, 1 + day, feature="image", idempotency_key=f"warm-{day}")
    assert _q(engine, "SELECT COUNT(*) FROM staff_rollup_day")[0][0] == 0
    staff_rollups.warm(engine, now=today)
    filled = {(series, d) for series, d in _q(engine, "SELECT series, day FROM staff_rollup_day")}
    closed = (base + timedelta(days=1)).date().isoformat()
    assert {("credits", closed), ("revenue", closed), ("jobs", closed)} <= filled
    assert ("credits", today.date().isoformat()) not in filled
    stored = _q(engine, "SELECT COUNT(*), SUM(value) FROM staff_rollup")[0]
    staff_rollups.warm(engine, now=today)
    assert _q(engine, "SELECT COUNT(*), SUM(value) FROM staff_rollup")[0] == stored
    start = datetime.combine(base.date(), datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(today.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    _assert_overview_equals_sql(engine, start, end, today)


def test_a_large_fill_refreshes_postgresqls_statistics_of_the_rollups(pg_engine, monkeypatch):
    """Planned with an empty table's statistics, the 12-month run-time read sorted on
    disk (docs/benchmarks.md): a fill of ANALYZE_AFTER_ROWS rows or more runs ANALYZE
    (pg_class.reltuples is -1 until a table is first analyzed), a smaller one does not."""
    from workroom_app.billing import staff_rollups

    def reltuples() -> float:
        return _q(pg_engine, "SELECT reltuples FROM pg_class WHERE relname = 'staff_rollup'")[0][0]

    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    base = today - timedelta(days=5)
    with clock.pinned(base):
        user = sign_up(pg_engine, "stats@example.com")
    for day in range(4):
        with clock.pinned(base + timedelta(days=day, hours=1)), write_session(pg_engine) as s:
            ledger.debit(s, user, 1 + day, feature="image", idempotency_key=f"stats-{day}")
    monkeypatch.setattr(staff_rollups, "ANALYZE_AFTER_ROWS", 10**9)
    staff_rollups.warm(pg_engine, now=today - timedelta(days=2))
    assert _q(pg_engine, "SELECT COUNT(*) FROM staff_rollup")[0][0] > 0
    assert reltuples() < 0  # filled, never analyzed
    monkeypatch.setattr(staff_rollups, "ANALYZE_AFTER_ROWS", 1)
    staff_rollups.warm(pg_engine, now=today)  # fills the days that closed since
    assert reltuples() == _q(pg_engine, "SELECT COUNT(*) FROM staff_rollup")[0][0]


# List prices of the requests below, from catalog.toml by hand (rate x resolution x count),
# so the test does not price with the code it checks: Flux Schnell 1 credit an image at 1K,
# Flux Pro 4 an image and x2 at 2K.
SCHNELL = {
    "feature": "image",
    "model": "flux_schnell",
    "resolution": "1K",
    "count": 2,
    "prompt": "a",
}
FLUX_PRO_2K = {
    "feature": "image",
    "model": "flux_pro",
    "resolution": "2K",
    "count": 2,
    "prompt": "b",
}
LIST_PRICE = {"flux_schnell": 2, "flux_pro": 16}


def test_unlimited_generations_per_plan_and_top_accounts_equal_independent_sql(engine):
    """Unlimited generations in the range grouped by the account's current plan (a live
    subscription's plan, else Free), with their list price, and the accounts using the most."""
    pro_a, pro_b = make_account(engine, 0, plan="pro"), make_account(engine, 0, plan="pro")
    studio = make_account(engine, 0, plan="studio")
    gone = make_account(engine, 0, plan="studio")  # its plan ends before the overview is read
    plan_jobs = [
        (pro_a, SCHNELL, 3),
        (pro_b, SCHNELL, 1),
        (studio, FLUX_PRO_2K, 2),
        (gone, SCHNELL, 2),
    ]
    with clock.pinned(T0 + timedelta(hours=1)):
        for account_id, request, n in plan_jobs:
            for i in range(n):
                with write_session(engine) as s:
                    job = jobs.submit(
                        s, account_id, request, client_request_id=f"u{account_id}-{i}"
                    )
                    assert job.unlimited and job.cost == 0
        # An unlimited job outside the range and a paid one inside: neither counts.
        with clock.pinned(T0 - timedelta(days=3)), write_session(engine) as s:
            jobs.submit(s, pro_a, SCHNELL, client_request_id="before")
    with write_session(engine) as s:
        sub = s.exec(select(Subscription).where(Subscription.account_id == gone)).one()
        sub.status, sub.ended_at = "ended", T0 + timedelta(hours=2)
        s.add(sub)
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=1)
    with read_session(engine) as s:
        g = staff_metrics.generations(s, start, end, T0 + timedelta(days=2))

    truth = "unlimited" if engine.dialect.name == "postgresql" else "unlimited = 1"
    rows = _q(
        engine,
        "SELECT COALESCE(live.plan_key, 'free'), j.model, COUNT(*) FROM generation_job j "
        "LEFT JOIN subscription live ON live.account_id = j.account_id "
        "AND live.status IN ('active', 'past_due') "
        f"WHERE j.{truth} AND j.created_at >= :start AND j.created_at < :end "
        "GROUP BY COALESCE(live.plan_key, 'free'), j.model",
        start=start,
        end=end,
    )
    want: dict[str, Counter] = defaultdict(Counter)
    for plan, model, n in rows:
        want[plan].update({"count": int(n), "list_credits": int(n) * LIST_PRICE[model]})
    assert g.unlimited_by_plan == {p: dict(c) for p, c in want.items()}
    assert g.unlimited_by_plan == {
        "free": {"count": 2, "list_credits": 4},
        "pro": {"count": 4, "list_credits": 8},
        "studio": {"count": 2, "list_credits": 32},
    }
    rows = _q(
        engine,
        "SELECT a.email, COUNT(*) FROM generation_job j JOIN account a ON a.id = j.account_id "
        f"WHERE j.{truth} AND j.created_at >= :start AND j.created_at < :end "
        "GROUP BY a.id, a.email ORDER BY COUNT(*) DESC, a.id",
        start=start,
        end=end,
    )
    assert [(u["email"], u["count"]) for u in g.top_unlimited_users] == [
        (email, int(n)) for email, n in rows
    ]
    assert [u["plan"] for u in g.top_unlimited_users] == ["pro", "studio", "free", "pro"]
