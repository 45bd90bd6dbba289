"""Usage page queries with 1,000,000 ledger rows, 100,000 of them one user's:
first page, a deep page, a filtered page; p50/p95 on
SQLite and PostgreSQL. Goal: each <= 20 ms.

Run:  WORKROOM_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \
      .venv/bin/python benchmarks/bench_usage.py [--runs 200] [--no-write]

The database is built by the real migrations (same indexes as production) in a
scratch SQLite file and a scratch PostgreSQL database, both removed afterwards.
Rows are bulk-loaded (executemany / COPY): the ledger's triggers refuse only
UPDATE and DELETE. Each timed call is the whole `usage_page()` call in a fresh
read session, as the page state makes it (time zone lookup, cursor lookup,
the page query and the "is there a newer page" probe).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from benchmarks._common import (
    DOCS,
    cpu_model,
    load_average,
    ram_gib,
    scratch_postgres,
    write_section,
)  # noqa: E402
from workroom_app import db  # noqa: E402
from workroom_app.billing import usage  # noqa: E402
from workroom_app.billing.usage import UsageFilter  # noqa: E402
from workroom_app.schema import upgrade  # noqa: E402

TOTAL_ROWS = 1_000_000
USER_ROWS = 100_000
OTHER_ACCOUNTS = 5_000
SPAN_DAYS = 365
END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
START = END - timedelta(days=SPAN_DAYS)
USER_TZ = "Europe/Paris"
SECTION = "## Usage queries (issue 3)"

# What a busy account's log looks like: mostly generations, some refunds,
# a grant per month and the odd adjustment.
KINDS = [
    ("generation", "image", -5, 44),
    ("generation", "video", -45, 18),
    ("generation", "voiceover", -3, 12),
    ("generation", "face_swap", -20, 8),
    ("generation", "lip_sync", -30, 6),
    ("refund", "video", 45, 7),
    ("monthly_credits", None, 1000, 2),
    ("expiry", None, -100, 1),
    ("plan_change", None, 500, 1),
    ("staff_adjustment", None, 10, 1),
]
_WEIGHTS = [k[3] for k in KINDS]


def generate_rows(user_id: int, other_ids: list[int]):
    """All 1,000,000 rows in time order (ids follow time, as in production),
    with the user's 100,000 spread evenly among everyone else's."""
    rng = random.Random(42)
    step = (END - START) / TOTAL_ROWS
    user_every = TOTAL_ROWS // USER_ROWS
    balances: dict[int, int] = {}
    kinds = rng.choices(KINDS, weights=_WEIGHTS, k=TOTAL_ROWS)
    for i in range(TOTAL_ROWS):
        account = user_id if i % user_every == 0 else other_ids[i % len(other_ids)]
        action, feature, amount, _ = kinds[i]
        bal = balances.get(account, 0) + abs(amount)  # keep balances plausible, never negative
        balances[account] = bal
        created = START + step * i
        yield (account, action, feature, amount, bal, f"bench:{i}", created)


def _sqlite_ts(dt: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime writes (UTC, no offset).
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _accounts(n: int):
    created = START - timedelta(days=1)
    return [
        (i, f"user{i}@bench.test", "x", "", "user", USER_TZ if i == 1 else "UTC", created)
        for i in range(1, n + 1)
    ]


def load_sqlite(path: Path) -> tuple[float, int]:
    engine = db.make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    t = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    accounts = _accounts(OTHER_ACCOUNTS + 1)
    con.executemany(
        "INSERT INTO account (id, email, password_hash, display_name, role, timezone, created_at) VALUES (?,?,?,?,?,?,?)",
        [a[:6] + (_sqlite_ts(a[6]),) for a in accounts],
    )
    rows = (
        (a, act, f, amt, bal, key, _sqlite_ts(c))
        for a, act, f, amt, bal, key, c in generate_rows(1, list(range(2, OTHER_ACCOUNTS + 2)))
    )
    con.executemany(
        "INSERT INTO ledger_entry (account_id, action_type, feature, amount, balance_after, idempotency_key, created_at) VALUES (?,?,?,?,?,?,?)",
        rows,
    )
    # No ANALYZE: the app never runs one, so the planner gets no statistics here either.
    con.commit()
    count = con.execute("SELECT count(*) FROM ledger_entry").fetchone()[0]
    con.close()
    return time.perf_counter() - t, count


def load_postgres(url: str) -> tuple[float, int]:
    import psycopg

    t = time.perf_counter()
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as con:
        with con.cursor() as cur:
            with cur.copy(
                "COPY account (id, email, password_hash, display_name, role, timezone, created_at) FROM STDIN"
            ) as cp:
                for a in _accounts(OTHER_ACCOUNTS + 1):
                    cp.write_row(a)
            cur.execute("SELECT setval('account_id_seq', %s)", (OTHER_ACCOUNTS + 1,))
            with cur.copy(
                "COPY ledger_entry (account_id, action_type, feature, amount, balance_after, idempotency_key, created_at) FROM STDIN"
            ) as cp:
                for row in generate_rows(1, list(range(2, OTHER_ACCOUNTS + 2))):
                    cp.write_row(row)
        con.commit()
        con.autocommit = True
        # What autovacuum would have done by the time a table holds a million rows.
        con.execute("VACUUM ANALYZE ledger_entry")
        count = con.execute("SELECT count(*) FROM ledger_entry").fetchone()[0]
    return time.perf_counter() - t, count


def _pct(samples: list[float], q: float) -> float:
    samples = sorted(samples)
    return samples[min(len(samples) - 1, round(q * (len(samples) - 1)))]


def measure(engine, runs: int) -> dict[str, tuple[float, float, int]]:
    """Timed cases -> (p50 ms, p95 ms, rows returned)."""
    with db.read_session(engine) as s:
        # A cursor 90,000 rows back: the user's own entry ids in time order.
        ids = [
            r[0]
            for r in s.connection().execute(
                text(
                    "SELECT id FROM ledger_entry WHERE account_id = 1 ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET 90000"
                )
            )
        ]
        deep_cursor = ids[0]
        mid_cursor = (
            s.connection()
            .execute(
                text(
                    "SELECT id FROM ledger_entry WHERE account_id = 1 AND action_type = 'generation' "
                    "AND created_at < :t ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET 500"
                ),
                {"t": END - timedelta(days=150)},
            )
            .scalar()
        )
    month_ago_half_year = (END - timedelta(days=180)).date()
    filtered = UsageFilter(
        action_types=("generation",),
        date_from=month_ago_half_year,
        date_to=month_ago_half_year + timedelta(days=29),
    )
    cases = {
        "first page": dict(),
        "deep page (90,000 rows back)": dict(before_id=deep_cursor),
        "filtered: Generation + 30-day range 6 months back": dict(filters=filtered),
        "filtered, deep inside the range (Older)": dict(filters=filtered, before_id=mid_cursor),
        "filtered: Refund + Expiry + Plan change": dict(
            filters=UsageFilter(action_types=("refund", "expiry", "plan_change"))
        ),
        "filtered: feature Lip sync": dict(filters=UsageFilter(features=("lip_sync",))),
        "Newer from the deep page": dict(after_id=deep_cursor),
    }
    results = {}
    for name, kwargs in cases.items():
        samples = []
        n_rows = 0
        for i in range(runs + 5):
            t = time.perf_counter()
            with db.read_session(engine) as s:
                page = usage.usage_page(s, 1, limit=50, **kwargs)
            dt = (time.perf_counter() - t) * 1000
            if i >= 5:  # warm-up: first connection, statement caches
                samples.append(dt)
            n_rows = len(page.rows)
        results[name] = (statistics.median(samples), _pct(samples, 0.95), n_rows)
    t = time.perf_counter()
    with db.read_session(engine) as s:
        csv_bytes = sum(len(c) for c in usage.iter_csv(s, 1))
    results["CSV export, all 100,000 rows (one run)"] = (
        (time.perf_counter() - t) * 1000,
        float("nan"),
        csv_bytes,
    )
    t = time.perf_counter()
    with db.read_session(engine) as s:
        usage.spend_by_day(s, 1, now=END)
    results["spend_by_day, 30 days (one run)"] = ((time.perf_counter() - t) * 1000, float("nan"), 0)
    return results


def machine() -> str:
    ram = ram_gib()
    return (
        f"{os.cpu_count()} CPUs ({cpu_model('unknown')}), {'unknown' if ram is None else f'{ram:.1f} GiB'} RAM, "
        f"{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; load average at start "
        f"{load_average():.2f} (the machine is shared)"
    )


def table(engine_name: str, results, goal_ms: float = 20.0) -> list[str]:
    lines = [
        f"| {engine_name} | p50 ms | p95 ms | rows | goal ≤ {goal_ms:g} ms |",
        "|---|---:|---:|---:|---|",
    ]
    for name, (p50, p95, n) in results.items():
        if p95 != p95:  # single run (NaN p95)
            size = f"{n:,} bytes" if n else ""
            lines.append(f"| {name} | {p50:.0f} | | {size} | (not a goal) |")
        else:
            ok = "yes" if p95 <= goal_ms else "NO"
            lines.append(f"| {name} | {p50:.2f} | {p95:.2f} | {n} | {ok} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument(
        "--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone"
    )
    args = ap.parse_args()
    started = time.perf_counter()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    print(info)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        load_s, count = load_sqlite(path)
        print(f"SQLite: loaded {count:,} rows in {load_s:.1f} s")
        engine = db.make_engine(f"sqlite:///{path}")
        res = measure(engine, args.runs)
        engine.dispose()
        sqlite_lines = table("SQLite", res)
        print("\n".join(sqlite_lines))

    pg_lines: list[str] = []
    pg_url = os.environ.get("WORKROOM_TEST_POSTGRES_URL", "")
    if pg_url:
        with scratch_postgres(pg_url) as pg:
            url = pg.render_as_string(hide_password=False)
            engine = db.make_engine(url)
            with engine.connect() as conn:
                pg_version = conn.execute(text("SHOW server_version")).scalar()
            upgrade(engine)
            load_s, count = load_postgres(url)
            print(f"PostgreSQL {pg_version}: loaded {count:,} rows in {load_s:.1f} s")
            res = measure(engine, args.runs)
            engine.dispose()
            pg_lines = table(f"PostgreSQL {pg_version}", res)
            print("\n".join(pg_lines))
    else:
        print("PostgreSQL skipped: WORKROOM_TEST_POSTGRES_URL is not set")

    total = time.perf_counter() - started
    print(f"total {total:.0f} s")
    if not args.no_write:
        body = [
            f"Measured {when} by `benchmarks/bench_usage.py` ({args.runs} runs per case after 5 warm-up runs; "
            f"whole run {total:.0f} s).",
            f"Machine: {info}.",
            "",
            f"Data: {TOTAL_ROWS:,} ledger rows over {SPAN_DAYS} days, {USER_ROWS:,} of them one user's "
            f"(time zone {USER_TZ}), the rest spread over {OTHER_ACCOUNTS:,} other accounts; the schema and "
            "indexes come from the real migrations. Each figure is one whole `usage_page(limit=50)` call in a "
            "fresh read session: time zone lookup, cursor lookup, the page query and the newer/older probe.",
            "",
            *sqlite_lines,
            "",
            *(pg_lines or ["PostgreSQL: not measured (WORKROOM_TEST_POSTGRES_URL not set)."]),
            "",
            "How: keyset paging on `(created_at, id)` with the indexes `ix_ledger_account_created "
            "(account_id, created_at, id)` and `ix_ledger_account_action_created (account_id, action_type, "
            "created_at, id)`, so every case is one index range read of ~51 entries, whatever the depth; "
            "several action types are one range each, merged in Python. No OFFSET anywhere.",
        ]
        write_section(SECTION, body)
        print(f"wrote {DOCS} ({SECTION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
