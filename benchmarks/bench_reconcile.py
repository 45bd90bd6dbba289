"""Reconciliation time for N successful payments (default 100,000) on SQLite.

Bulk-loads N accounts' worth of paid local-gateway invoices, their charges and
their credit grants (ledger rows naming the invoice) directly (not timed), then
times `reconcile()` over all of it, `--repeat` times. The floor is the time to
read the invoice rows alone with the same query. Prints the figures and one
JSON line.

    .venv/bin/python -m benchmarks.bench_reconcile --count 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from benchmarks._common import load_average
from workroom_app import db
from workroom_app.billing.reconcile import reconcile
from workroom_app.models import Account, Invoice, LedgerEntry, LocalCharge
from workroom_app.schema import upgrade

ACCOUNTS = 1000


def load(engine, n: int) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
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
                    "created_at": now,
                }
                for i in range(1, ACCOUNTS + 1)
            ],
        )
        batch = 20_000
        for start in range(1, n + 1, batch):
            ids = range(start, min(n, start + batch - 1) + 1)
            conn.execute(
                insert(LocalCharge.__table__),
                [
                    {
                        "idempotency_key": f"c{i}",
                        "account_id": i % ACCOUNTS + 1,
                        "card_token": "t",
                        "amount_cents": 3000,
                        "currency": "usd",
                        "description": "",
                        "ok": True,
                        "gateway_ref": f"lch_{i}",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(Invoice.__table__),
                [
                    {
                        "id": i,
                        "account_id": i % ACCOUNTS + 1,
                        "seq": i,
                        "number": f"WR-{i}",
                        "kind": "renewal",
                        "status": "paid",
                        "amount_cents": 3000,
                        "currency": "usd",
                        "gateway": "local",
                        "gateway_ref": f"lch_{i}",
                        "idempotency_key": f"inv{i}",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(LedgerEntry.__table__),
                [
                    {
                        "account_id": i % ACCOUNTS + 1,
                        "action_type": "monthly_credits",
                        "amount": 3000,
                        "balance_after": 3000,
                        "reference_type": "invoice",
                        "reference_id": str(i),
                        "idempotency_key": f"g{i}",
                        "draws": "[[1,3000]]",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        t = time.perf_counter()
        load(engine, args.count)
        load_s = time.perf_counter() - t
        load_before = load_average()
        floors, runs = [], []
        for _ in range(args.repeat):
            with db.read_session(engine) as s:
                t = time.perf_counter()
                s.execute(
                    select(
                        Invoice.id,
                        Invoice.account_id,
                        Invoice.number,
                        Invoice.status,
                        Invoice.amount_cents,
                        Invoice.gateway,
                        Invoice.gateway_ref,
                    )
                ).all()
                floors.append(time.perf_counter() - t)
            with db.read_session(engine) as s:
                t = time.perf_counter()
                report = reconcile(s)
                runs.append(time.perf_counter() - t)
            assert report.ok and report.payments_checked == args.count, report.counts()
        engine.dispose()
    result = {
        "bench": "reconcile",
        "engine": "sqlite",
        "payments": args.count,
        "load_s": round(load_s, 1),
        "reconcile_s_median": round(statistics.median(runs), 2),
        "reconcile_s_max": round(max(runs), 2),
        "floor_read_invoices_s": round(statistics.median(floors), 3),
        "load_average": load_before,
    }
    print(
        f"reconcile {args.count:,} payments: median {result['reconcile_s_median']} s, "
        f"max {result['reconcile_s_max']} s (floor: reading the invoices {result['floor_read_invoices_s']} s); "
        f"load average {load_before}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
