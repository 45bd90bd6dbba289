"""Staff overview panels over a large synthetic dataset (SQLite, or PostgreSQL with --postgres).

Bulk-loads (not timed) `--ledger` ledger rows, `--invoices` paid invoices and
`--jobs` generation jobs spread evenly over 365 days, plus grants and
subscriptions, then times each panel of billing/staff_metrics/ for the last
30 days and for 12 months and prints p50/p95 per panel and one JSON line:
"first" is a visit with no rollups stored (they are deleted before each of
`--first-repeat` runs: it pays for filling the closed days), "warm" the
following `--repeat` visits (closed days from the rollup tables, the open
days live). The floor is `SELECT count(*)` over the range's ledger rows.
"Now" is END + 6 h (capped by real time, see billing/staff_rollups.py).

    .venv/bin/python -m benchmarks.bench_staff_overview --ledger 1000000 --invoices 100000 --jobs 1000000
    .venv/bin/python -m benchmarks.bench_staff_overview --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, insert, select

from benchmarks._common import load_average, scratch_postgres
from workroom_app import db
from workroom_app.billing import staff_metrics
from workroom_app.models import (
    Account,
    CreditGrant,
    GenerationJob,
    Invoice,
    LedgerEntry,
    StaffRollup,
    StaffRollupDay,
    Subscription,
)
from workroom_app.schema import upgrade

END = datetime(2026, 11, 30, tzinfo=UTC)
NOW = END + timedelta(hours=6)
ACCOUNTS = 2000
ACTIONS = [
    ("generation", -1),
    ("generation", -1),
    ("generation", -1),
    ("refund", 1),
    ("monthly_credits", 1),
    ("expiry", -1),
    ("plan_change", -1),
    ("plan_change", 1),
    ("staff_adjustment", 1),
    ("trial_grant", 1),
]
JOB_KINDS = [
    ("image", "flux_pro", "local"),
    ("image", "flux_schnell", "hosted"),
    ("video", "kling_2_1", "hosted"),
    ("voiceover", "standard", "local"),
]


def _when(rng: random.Random) -> datetime:
    return END - timedelta(seconds=rng.randint(1, 365 * 86400))


def load(engine, n_ledger: int, n_invoices: int, n_jobs: int) -> None:
    rng = random.Random(7)
    batch = 50_000
    with engine.begin() as conn:
        conn.execute(
            insert(Account.__table__),
            [
                {
                    "id": i,
                    "email": f"u{i}@bench.test",
                    "password_hash": "x",
                    "display_name": "",
                    "role": "user",
                    "timezone": "UTC",
                    "created_at": END - timedelta(days=400),
                }
                for i in range(1, ACCOUNTS + 1)
            ],
        )
        conn.execute(
            insert(Subscription.__table__),
            [
                {
                    "account_id": i,
                    "plan_key": rng.choice(["starter", "pro", "studio"]),
                    "status": rng.choice(["active"] * 8 + ["past_due", "ended"]),
                    "gateway": "local",
                    "anchor_day": 1,
                    "current_period_start": END - timedelta(days=10),
                    "current_period_end": END + timedelta(days=20),
                    "created_at": END - timedelta(days=300),
                    "updated_at": END,
                    "ended_at": END - timedelta(days=rng.randint(1, 300)),
                }
                for i in range(1, ACCOUNTS + 1)
            ],
        )
        conn.execute(
            insert(CreditGrant.__table__),
            [
                {
                    "account_id": rng.randint(1, ACCOUNTS),
                    "source": "monthly",
                    "amount_granted": 3000,
                    "amount_left": rng.randint(0, 3000),
                    "expires_at": END + timedelta(days=rng.randint(-10, 200)),
                    "created_at": END - timedelta(days=20),
                }
                for _ in range(20_000)
            ],
        )
        for start in range(0, n_ledger, batch):
            rows = []
            for i in range(start, min(n_ledger, start + batch)):
                action, sign = rng.choice(ACTIONS)
                rows.append(
                    {
                        "account_id": rng.randint(1, ACCOUNTS),
                        "action_type": action,
                        "amount": sign * rng.randint(1, 500),
                        "balance_after": 1000,
                        "idempotency_key": f"k{i}",
                        "created_at": _when(rng),
                    }
                )
            conn.execute(insert(LedgerEntry.__table__), rows)
        for start in range(0, n_invoices, batch):
            conn.execute(
                insert(Invoice.__table__),
                [
                    {
                        "account_id": i % ACCOUNTS + 1,
                        "subscription_id": i % ACCOUNTS + 1,
                        "seq": i + 1,
                        "number": f"WR-{i}",
                        "kind": rng.choice(
                            ["renewal"] * 6 + ["activation", "upgrade", "downgrade"]
                        ),
                        "status": "paid",
                        "amount_cents": rng.choice([1000, 3000, 8000]),
                        "currency": "usd",
                        "plan_key": rng.choice(["starter", "pro", "studio"]),
                        "gateway": "local",
                        "idempotency_key": f"inv{i}",
                        "created_at": _when(rng),
                    }
                    for i in range(start, min(n_invoices, start + batch))
                ],
            )
        for start in range(0, n_jobs, batch):
            rows = []
            for i in range(start, min(n_jobs, start + batch)):
                feature, model, provider = rng.choice(JOB_KINDS)
                created = _when(rng)
                status = rng.choice(["succeeded"] * 8 + ["failed", "timed_out"])
                rows.append(
                    {
                        "account_id": rng.randint(1, ACCOUNTS),
                        "client_request_id": f"c{i}",
                        "feature": feature,
                        "model": model,
                        "params_json": "{}",
                        "cost": rng.randint(0, 200),
                        "unlimited": False,
                        "status": status,
                        "progress": 100,
                        "provider": provider,
                        "created_at": created,
                        "started_at": created + timedelta(seconds=1),
                        "finished_at": created + timedelta(seconds=rng.randint(2, 120)),
                        "deadline_at": created + timedelta(minutes=10),
                        "updated_at": created,
                        "refund_entry_id": 1 if status != "succeeded" else None,
                    }
                )
            conn.execute(insert(GenerationJob.__table__), rows)


def _uptime() -> str:
    """`uptime`'s line: the machine is shared, so every figure says how busy it was."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {load_average():.2f}"


def measure(engine, args: argparse.Namespace) -> tuple[float, dict[str, dict[str, float]]]:
    """Load the data into `engine` (not timed) and time every panel there."""
    results: dict[str, dict[str, float]] = {}
    upgrade(engine)
    t = time.perf_counter()
    load(engine, args.ledger, args.invoices, args.jobs)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    load_s = time.perf_counter() - t
    ranges = {
        "30 days": (END - timedelta(days=30), END),
        "12 months": (END - timedelta(days=365), END),
    }
    panels = {
        "money": lambda s, a, b: staff_metrics.money(s, a, b, NOW),
        "credits": lambda s, a, b: staff_metrics.credits(s, a, b, NOW),
        "generations": lambda s, a, b: staff_metrics.generations(s, a, b, NOW),
    }
    for label, (a, b) in ranges.items():
        # The floor, in the same run: counting the range's ledger rows (best of 3).
        floors = []
        for _ in range(3):
            with db.read_session(engine) as s:
                t = time.perf_counter()
                s.execute(
                    select(func.count())
                    .select_from(LedgerEntry)
                    .where(LedgerEntry.created_at >= a, LedgerEntry.created_at < b)
                ).scalar()
                floors.append(time.perf_counter() - t)
        results[f"floor count ledger {label}"] = {
            "p50_ms": round(statistics.median(floors) * 1000, 1),
            "p95_ms": round(max(floors) * 1000, 1),
        }
        for name, fn in panels.items():
            for phase, runs in (("first", args.first_repeat), ("warm", args.repeat)):
                times = []
                for _ in range(runs):
                    if phase == "first":
                        with engine.begin() as conn:
                            conn.execute(delete(StaffRollup.__table__))
                            conn.execute(delete(StaffRollupDay.__table__))
                    with db.read_session(engine) as s:
                        t = time.perf_counter()
                        fn(s, a, b)
                        times.append(time.perf_counter() - t)
                times.sort()
                p95 = times[max(0, -(-95 * len(times) // 100) - 1)]
                results[f"{name} {label} {phase}"] = {
                    "p50_ms": round(statistics.median(times) * 1000, 1),
                    "p95_ms": round(p95 * 1000, 1),
                }
    return load_s, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--first-repeat", type=int, default=2)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default="",
        help="run on a scratch database on this PostgreSQL server instead of SQLite",
    )
    args = parser.parse_args()
    uptime_before = _uptime()
    load_before = load_average()
    if args.postgres:
        with scratch_postgres(args.postgres) as url:
            engine = db.make_engine(url.render_as_string(hide_password=False))
            try:
                load_s, results = measure(engine, args)
            finally:
                engine.dispose()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            engine = db.make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                load_s, results = measure(engine, args)
            finally:
                engine.dispose()
    uptime_after = _uptime()
    for key, value in results.items():
        print(f"{key:38s} p50 {value['p50_ms']:>9,.1f} ms   p95 {value['p95_ms']:>9,.1f} ms")
    print(f"uptime before: {uptime_before}")
    print(f"uptime after:  {uptime_after}")
    print(
        json.dumps(
            {
                "bench": "staff_overview",
                "engine": "postgresql" if args.postgres else "sqlite",
                "ledger": args.ledger,
                "invoices": args.invoices,
                "jobs": args.jobs,
                "load_s": round(load_s, 1),
                "load_average": load_before,
                "uptime_before": uptime_before,
                "uptime_after": uptime_after,
                "panels": results,
            }
        )
    )


if __name__ == "__main__":
    main()
