"""Ledger benchmark: `workroom bench ledger [--json]`.

In one process, on a scratch SQLite file (WAL, synchronous=FULL, as db.py sets
it) and, when WORKROOM_TEST_POSTGRES_URL is set, on a scratch PostgreSQL
database (created here and dropped after):

- debit_ops_per_s: the full debit path, each debit its own write_session
  transaction (lock the balance row, idempotency key, grant selection, ledger
  row, cached balance, commit), one writer;
- concurrent_debit_ops_per_s: the same with 8 writer threads, one account each;
- raw_ops_per_s: the floor of the same database: one UPDATE plus one INSERT
  per transaction through the bare driver (sqlite3 / psycopg), same durability
  settings and the same tables and indexes;
- ratio = debit_ops_per_s / raw_ops_per_s (goal >= 0.5);
- balance_read_p50_ms: reading the balance the way the header does (a fresh
  read session + ledger.balance) for an account with 1,000,000 ledger rows
  (goal <= 1 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from benchmarks._common import scratch_postgres
from workroom_app import db
from workroom_app.billing import clock, ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, ActionType, GrantSource
from workroom_app.schema import upgrade

SECONDS = float(os.environ.get("WORKROOM_BENCH_SECONDS", "4"))
WRITERS = 8
BIG_ROWS = 1_000_000
READS = 3000


def _say(msg: str) -> None:
    print(msg, flush=True)


def _new_account(engine: Engine, label: str, credits: int) -> int:
    """An account with a trial grant and a large expiring monthly grant, like a
    subscriber's: debits draw from the monthly bucket."""
    with write_session(engine) as s:
        acct = Account(
            email=f"{label}-{uuid.uuid4().hex[:8]}@bench.test",
            password_hash="x",
            created_at=clock.now(),
        )
        s.add(acct)
        s.flush()
        ledger.open_account(s, acct.id)
        ledger.grant(
            s,
            acct.id,
            50,
            action_type=ActionType.TRIAL_GRANT,
            source=GrantSource.TRIAL,
            idempotency_key=f"trial:{acct.id}",
        )
        if credits:
            ledger.grant(
                s,
                acct.id,
                credits,
                action_type=ActionType.SUBSCRIPTION_CREDITS,
                source=GrantSource.SUBSCRIPTION,
                idempotency_key=f"month:{acct.id}",
                expires_at=clock.now() + timedelta(days=30),
                subscription_id=1,
            )
        return acct.id


def _timed_loop(step, seconds: float) -> tuple[int, float]:
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        step(done)
        done += 1
    return done, time.perf_counter() - start


def _debit_step(engine: Engine):
    acct = _new_account(engine, "single", 10**9)

    def step(i: int) -> None:
        with write_session(engine) as s:
            ledger.debit(s, acct, 1, feature="image", idempotency_key=f"b1:{acct}:{i}")

    return step


def _interleaved(debit_step, raw_step, seconds: float, rounds: int = 16) -> tuple[float, float]:
    """ops/s of both, measured in alternating slices: the disk's fsync latency
    drifts (other processes share it), and alternating exposes both loops to
    the same drift instead of handing one of them a quieter minute."""
    _timed_loop(lambda i: debit_step(i + 10**7), 0.3)  # warm up pools and statement caches
    _timed_loop(lambda i: raw_step(i + 10**7), 0.3)
    totals = {"debit": [0, 0.0], "raw": [0, 0.0]}
    for _ in range(rounds):
        for name, step in (("debit", debit_step), ("raw", raw_step)):
            offset = totals[name][0]
            done, elapsed = _timed_loop(
                lambda i, step=step, offset=offset: step(offset + i), seconds / rounds
            )
            totals[name][0] += done
            totals[name][1] += elapsed
    return totals["debit"][0] / totals["debit"][1], totals["raw"][0] / totals["raw"][1]


def _debit_concurrent(engine: Engine, seconds: float) -> float:
    accounts = [_new_account(engine, f"writer{n}", 10**9) for n in range(WRITERS)]
    counts = [0] * WRITERS
    barrier = threading.Barrier(WRITERS + 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        acct = accounts[n]
        barrier.wait()
        i = 0
        try:
            while not stop.is_set():
                with write_session(engine) as s:
                    ledger.debit(s, acct, 1, feature="image", idempotency_key=f"b8:{acct}:{i}")
                i += 1
        except BaseException as exc:  # noqa: BLE001  (reported below: a benchmark must not hide errors)
            errors.append(exc)
        counts[n] = i

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


_RAW_UPDATE = (
    "UPDATE account_balance SET balance = balance - 1, updated_at = {p} WHERE account_id = {p}"
)
_RAW_INSERT = (
    "INSERT INTO ledger_entry (account_id, action_type, feature, amount, balance_after, "
    "idempotency_key, created_at) VALUES ({p}, 'generation', 'image', -1, 0, {p}, {p})"
)


def _raw_sqlite(path: Path, acct: int):
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    update = _RAW_UPDATE.format(p="?")
    insert = _RAW_INSERT.format(p="?")

    def step(i: int) -> None:
        now = clock.now().strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(update, (now, acct))
        conn.execute(insert, (acct, f"raw:{acct}:{i}", now))
        conn.execute("COMMIT")

    return step, conn.close


def _raw_postgres(url: str, acct: int):
    import psycopg

    conn = psycopg.connect(url)
    update = _RAW_UPDATE.format(p="%s")
    insert = _RAW_INSERT.format(p="%s")

    def step(i: int) -> None:
        now = clock.now()
        with conn.cursor() as cur:
            cur.execute(update, (now, acct))
            cur.execute(insert, (acct, f"raw:{acct}:{i}", now))
        conn.commit()

    return step, conn.close


def _fill_big_account_sqlite(path: Path, acct: int) -> None:
    """BIG_ROWS ledger rows of +1 each, one grant holding them and a matching
    cached balance, so the account stays consistent."""
    conn = sqlite3.connect(path, isolation_level=None)
    now = clock.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    conn.execute("BEGIN IMMEDIATE")
    base = conn.execute(
        "SELECT balance FROM account_balance WHERE account_id = ?", (acct,)
    ).fetchone()[0]
    conn.executemany(
        "INSERT INTO ledger_entry (account_id, action_type, amount, balance_after, "
        "idempotency_key, created_at) VALUES (?, 'monthly_credits', 1, ?, ?, ?)",
        ((acct, base + i + 1, f"big:{acct}:{i}", now) for i in range(BIG_ROWS)),
    )
    conn.execute(
        "INSERT INTO credit_grant (account_id, source, amount_granted, amount_left, created_at) "
        "VALUES (?, 'monthly', ?, ?, ?)",
        (acct, BIG_ROWS, BIG_ROWS, now),
    )
    conn.execute(
        "UPDATE account_balance SET balance = balance + ? WHERE account_id = ?", (BIG_ROWS, acct)
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _fill_big_account_postgres(url: str, acct: int) -> None:
    import psycopg

    now = clock.now()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT balance FROM account_balance WHERE account_id = %s FOR UPDATE", (acct,)
            )
            base = cur.fetchone()[0]
            with cur.copy(
                "COPY ledger_entry (account_id, action_type, amount, balance_after, "
                "idempotency_key, created_at) FROM STDIN"
            ) as copy:
                for i in range(BIG_ROWS):
                    copy.write_row(
                        (acct, "monthly_credits", 1, base + i + 1, f"big:{acct}:{i}", now)
                    )
            cur.execute(
                "INSERT INTO credit_grant (account_id, source, amount_granted, amount_left, "
                "created_at) VALUES (%s, 'monthly', %s, %s, %s)",
                (acct, BIG_ROWS, BIG_ROWS, now),
            )
            cur.execute(
                "UPDATE account_balance SET balance = balance + %s WHERE account_id = %s",
                (BIG_ROWS, acct),
            )
        conn.commit()
        conn.execute("ANALYZE")


def _balance_read_p50_ms(engine: Engine, acct: int, expected: int) -> float:
    samples = []
    for i in range(READS + 200):
        t = time.perf_counter()
        with read_session(engine) as s:
            value = ledger.balance(s, acct)
        if i >= 200:  # the first reads warm the pool and caches
            samples.append(time.perf_counter() - t)
        if value != expected:
            raise AssertionError(f"balance {value} != {expected}")
    return statistics.median(samples) * 1000


def _bench_engine(name: str, engine: Engine, raw, fill_big) -> dict:
    _say(
        f"[{name}] full debit path vs raw floor (UPDATE + INSERT per transaction, bare "
        f"driver), 1 writer, {SECONDS:.0f} s each, interleaved ..."
    )
    raw_step, raw_close = raw(_new_account(engine, "raw", 0))
    try:
        single, raw_ops = _interleaved(_debit_step(engine), raw_step, SECONDS)
    finally:
        raw_close()
    _say(
        f"[{name}]   {single:,.0f} debits/s, raw {raw_ops:,.0f} transactions/s, "
        f"ratio {single / raw_ops:.2f}"
    )
    _say(f"[{name}] full debit path, {WRITERS} writers ...")
    concurrent = _debit_concurrent(engine, SECONDS)
    _say(f"[{name}]   {concurrent:,.0f} debits/s")
    _say(f"[{name}] loading {BIG_ROWS:,} ledger rows for one account ...")
    big = _new_account(engine, "big", 0)
    t = time.perf_counter()
    fill_big(big)
    _say(f"[{name}]   loaded in {time.perf_counter() - t:.1f} s")
    with read_session(engine) as s:
        expected = ledger.balance(s, big)
    p50 = _balance_read_p50_ms(engine, big, expected)
    _say(f"[{name}] balance read p50 {p50:.3f} ms ({READS} reads, balance {expected:,})")
    return {
        "debit_ops_per_s": round(single, 1),
        "raw_ops_per_s": round(raw_ops, 1),
        "ratio": round(single / raw_ops, 3),
        "concurrent_debit_ops_per_s": round(concurrent, 1),
        "balance_read_p50_ms": round(p50, 4),
    }


def bench_sqlite() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="workroom-bench-"))
    path = tmp / "bench.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        return _bench_engine(
            "sqlite",
            engine,
            lambda acct: _raw_sqlite(path, acct),
            lambda acct: _fill_big_account_sqlite(path, acct),
        )
    finally:
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_postgres(postgres_url: str) -> dict:
    with scratch_postgres(postgres_url) as url:
        engine = db.make_engine(url.render_as_string(hide_password=False))
        libpq_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            upgrade(engine)
            return _bench_engine(
                "postgres",
                engine,
                lambda acct: _raw_postgres(libpq_url, acct),
                lambda acct: _fill_big_account_postgres(libpq_url, acct),
            )
        finally:
            engine.dispose()


def run(postgres_url: str | None) -> dict:
    results: dict = {"sqlite": bench_sqlite()}
    if postgres_url:
        results["postgres"] = bench_postgres(postgres_url)
    else:
        results["postgres"] = {"skipped": "WORKROOM_TEST_POSTGRES_URL is not set"}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="workroom bench ledger", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    return report(run(os.environ.get("WORKROOM_TEST_POSTGRES_URL") or None), as_json=args.json)


def report(results: dict, *, as_json: bool) -> int:
    _say("")
    _say(f"{'':10}{'debit/s':>10}{'raw/s':>10}{'ratio':>8}{'8 writers/s':>13}{'read p50 ms':>13}")
    for engine_name, r in results.items():
        if "skipped" in r:
            _say(f"{engine_name:10}skipped: {r['skipped']}")
            continue
        _say(
            f"{engine_name:10}{r['debit_ops_per_s']:>10,.0f}{r['raw_ops_per_s']:>10,.0f}"
            f"{r['ratio']:>8.2f}{r['concurrent_debit_ops_per_s']:>13,.0f}"
            f"{r['balance_read_p50_ms']:>13.3f}"
        )
    if as_json:
        print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
