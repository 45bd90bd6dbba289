"""Benchmark: renew N due subscriptions with the local gateway.

    .venv/bin/python benchmarks/bench_renewals.py --count 100000 --engine both

Builds a scratch database per engine through the real migrations (SQLite in a
temp dir; PostgreSQL: a new database next to WORKROOM_TEST_POSTGRES_URL,
dropped afterwards), bulk-loads N accounts each with a balance, a Pro
subscription whose period ended a minute ago, its Subscription-credits grant
and a saved Visa, then times one `subscriptions.renew_due(engine)` call: the
same code the worker's scheduler and `workroom renew --due` run. Every renewal
does what production does: the local charge, a paid invoice + line, the Expiry
row for the old credits, the Monthly credits grant, the subscription update
and the receipt in the outbox. Afterwards it checks the counts and runs
ledger_check.

Prints a markdown table; --write-docs replaces the "## Renewals (issue 4)"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, insert, select, text  # noqa: E402

from benchmarks._common import cpu_model, load_average, ram_gib, scratch_postgres  # noqa: E402
from workroom_app import db  # noqa: E402
from workroom_app.billing import catalog, clock, subscriptions  # noqa: E402
from workroom_app.billing.ledger_check import check_ledger  # noqa: E402
from workroom_app.models import (  # noqa: E402
    Account,
    AccountBalance,
    ActionType,
    CreditGrant,
    GrantSource,
    Invoice,
    LedgerEntry,
    LocalCard,
    OutboxEmail,
    PaymentMethod,
    Subscription,
)
from workroom_app.schema import upgrade  # noqa: E402

DUE = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
NOW = DUE + timedelta(minutes=1)
START = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
CHUNK = 5000


def _load(engine, count: int) -> None:
    plan = catalog.get_catalog().plan("pro")
    rows_acc, rows_bal, rows_sub, rows_card, rows_pm, rows_grant, rows_entry = (
        [] for _ in range(7)
    )
    for i in range(1, count + 1):
        rows_acc.append(
            dict(
                id=i,
                email=f"bench{i}@example.com",
                password_hash="x",
                display_name="",
                role="user",
                timezone="UTC",
                created_at=START,
            )
        )
        rows_bal.append(
            dict(account_id=i, balance=plan.monthly_credits, next_expiry_at=DUE, updated_at=START)
        )
        rows_sub.append(
            dict(
                id=i,
                account_id=i,
                plan_key="pro",
                status="active",
                gateway="local",
                gateway_subscription_id=None,
                anchor_day=31,
                current_period_start=START,
                current_period_end=DUE,
                cancel_at_period_end=False,
                failed_attempts=0,
                next_retry_at=None,
                created_at=START,
                updated_at=START,
                ended_at=None,
            )
        )
        token = f"card_local_bench{i:08d}"
        rows_card.append(
            dict(
                token=token,
                account_id=i,
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=2030,
                behaviour="ok",
                created_at=START,
            )
        )
        rows_pm.append(
            dict(
                account_id=i,
                gateway="local",
                gateway_ref=token,
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=2030,
                is_default=True,
                created_at=START,
                removed_at=None,
            )
        )
        rows_grant.append(
            dict(
                id=i,
                account_id=i,
                source=GrantSource.SUBSCRIPTION.value,
                amount_granted=plan.monthly_credits,
                amount_left=plan.monthly_credits,
                expires_at=DUE,
                subscription_id=i,
                created_at=START,
                closed_at=None,
            )
        )
        rows_entry.append(
            dict(
                account_id=i,
                action_type=ActionType.SUBSCRIPTION_CREDITS.value,
                feature=None,
                amount=plan.monthly_credits,
                balance_after=plan.monthly_credits,
                reference_type="subscription",
                reference_id=str(i),
                idempotency_key=f"bench-activation:{i}",
                reason=None,
                actor_id=None,
                draws=f"[[{i},{plan.monthly_credits}]]",
                created_at=START,
            )
        )
        if len(rows_acc) == CHUNK or i == count:
            with engine.begin() as conn:
                for table, rows in (
                    (Account, rows_acc),
                    (AccountBalance, rows_bal),
                    (Subscription, rows_sub),
                    (LocalCard, rows_card),
                    (PaymentMethod, rows_pm),
                    (CreditGrant, rows_grant),
                    (LedgerEntry, rows_entry),
                ):
                    conn.execute(insert(table.__table__), rows)
                    rows.clear()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in ("account", "subscription", "credit_grant"):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count})")
                )
            # What autovacuum does after a bulk load: statistics for the tables
            # just filled, and ONLY those. A database-wide ANALYZE also recorded
            # the still-empty invoice/local_charge/invoice_line tables as 0 rows,
            # 0 pages; the generic plans PostgreSQL then caches (psycopg prepares
            # a statement on its 5th run; the invoice_line foreign-key check is
            # cached too) were sequential scans, kept for the whole run because
            # nothing re-analyzes (this server runs with autovacuum off). Four
            # scans of the growing invoice table per renewal: 85/s fell to 27/s.
            # Autovacuum never analyzes an empty table, so production does not
            # get into that state.
            conn.execute(
                text(
                    "ANALYZE account, account_balance, subscription, local_card, "
                    "payment_method, credit_grant, ledger_entry"
                )
            )


def _verify(engine, count: int) -> list[str]:
    problems = []
    with db.read_session(engine) as s:
        conn = s.connection()
        paid = conn.execute(
            select(func.count())
            .select_from(Invoice.__table__)
            .where(Invoice.__table__.c.status == "paid")
        ).scalar_one()
        monthly = conn.execute(
            select(func.count())
            .select_from(LedgerEntry.__table__)
            .where(LedgerEntry.__table__.c.action_type == ActionType.MONTHLY_CREDITS.value)
        ).scalar_one()
        expiry = conn.execute(
            select(func.count())
            .select_from(LedgerEntry.__table__)
            .where(LedgerEntry.__table__.c.action_type == ActionType.EXPIRY.value)
        ).scalar_one()
        mails = conn.execute(select(func.count()).select_from(OutboxEmail.__table__)).scalar_one()
        still_due = conn.execute(
            select(func.count())
            .select_from(Subscription.__table__)
            .where(Subscription.__table__.c.current_period_end <= NOW)
        ).scalar_one()
        for name, got in (
            ("paid invoices", paid),
            ("monthly credit rows", monthly),
            ("expiry rows", expiry),
            ("receipts", mails),
        ):
            if got != count:
                problems.append(f"{name}: {got} != {count}")
        if still_due:
            problems.append(f"{still_due} subscriptions still due")
        problems += check_ledger(s)
    return problems


def run_one(engine, count: int, batch_size: int, workers: int = 1) -> dict:
    upgrade(engine)
    t = time.perf_counter()
    _load(engine, count)
    load_s = time.perf_counter() - t
    with clock.pinned(NOW):
        report = subscriptions.renew_due(engine, batch_size=batch_size, workers=workers)
    problems = _verify(engine, count)
    return dict(
        load_s=load_s,
        seconds=report.elapsed_seconds,
        renewed=report.renewed,
        errors=len(report.errors),
        problems=problems,
    )


def _sqlite(count: int, batch_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            return run_one(engine, count, batch_size)
        finally:
            engine.dispose()


def _postgres(count: int, batch_size: int, workers: int) -> dict | None:
    url = os.environ.get("WORKROOM_TEST_POSTGRES_URL")
    if not url:
        print("WORKROOM_TEST_POSTGRES_URL is not set: skipping PostgreSQL", file=sys.stderr)
        return None
    with scratch_postgres(url) as pg:
        engine = db.make_engine(pg.render_as_string(hide_password=False))
        try:
            result = run_one(engine, count, batch_size, workers)
            with engine.connect() as conn:
                result["version"] = conn.execute(text("SHOW server_version")).scalar()
            return result
        finally:
            engine.dispose()


def _machine() -> str:
    ram = ram_gib()
    mem = "" if ram is None else f", {ram:.1f} GiB RAM"
    cpu = cpu_model(platform.processor() or platform.machine())
    return (
        f"{os.cpu_count()} CPUs ({cpu}){mem}, Linux {platform.release()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; load average at start {load_average():.2f} (the machine is shared)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--pg-workers", type=int, default=2, help="renew_due(workers=) on PostgreSQL")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    machine = _machine()
    started = datetime.now(UTC)
    results = {}
    if args.engine in ("sqlite", "both"):
        results["SQLite"] = _sqlite(args.count, args.batch_size)
        print("SQLite", results["SQLite"], flush=True)
    if args.engine in ("postgres", "both"):
        pg = _postgres(args.count, args.batch_size, args.pg_workers)
        if pg:
            results[f"PostgreSQL {pg.pop('version')} ({args.pg_workers} workers)"] = pg
            print("PostgreSQL", pg, flush=True)
    lines = [
        "## Renewals (issue 4)",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC by `benchmarks/bench_renewals.py --count {args.count}` "
        f"(batch size {args.batch_size}).",
        f"Machine: {machine}.",
        "",
        f"Data: {args.count:,} accounts, each with a Pro subscription due a minute ago, its plan credits "
        "and a saved Visa (bulk-loaded; not timed). Timed: one `subscriptions.renew_due(engine)` call, the "
        "code the worker and `workroom renew --due` run. Each renewal = local charge (idempotency key) + paid "
        "invoice and line + Expiry row + Monthly credits grant + subscription moved to the next period + "
        "receipt in the outbox, in a savepoint; batches of subscriptions share one transaction/commit. "
        "Checked afterwards: every count matches and `ledger_check` is clean.",
        "",
        "| engine | subscriptions | total s | renewals/s | errors | checks |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        ok = "clean" if not r["problems"] and not r["errors"] else "; ".join(r["problems"][:3])
        lines.append(
            f"| {name} | {r['renewed']:,} | {r['seconds']:.1f} | {r['renewed'] / r['seconds']:,.0f} "
            f"| {r['errors']} | {ok} |"
        )
    lines.append("")
    section = "\n".join(lines)
    print(section)
    if args.write_docs:
        _write_docs(section)
    return 0 if all(not r["problems"] and not r["errors"] for r in results.values()) else 1


def _write_docs(section: str) -> None:
    path = REPO / "docs" / "benchmarks.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    head = "## Renewals (issue 4)"
    if head in current:
        before, rest = current.split(head, 1)
        nxt = rest.find("\n## ")
        after = rest[nxt + 1 :] if nxt >= 0 else ""
        current = before + section + ("\n" + after if after else "")
    else:
        current = current.rstrip("\n") + "\n\n" + section
    path.write_text(current)


if __name__ == "__main__":
    sys.exit(main())
