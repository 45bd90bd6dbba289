"""The debit path with alerts and auto top-up configured vs without.

`python -m benchmarks.bench_alert_debits [--json]`; `workroom bench ledger`'s
debit step is reused: one writer, each debit its own write_session
transaction, on a scratch SQLite file and (with WORKROOM_TEST_POSTGRES_URL)
a scratch PostgreSQL database.

- plain: the after-commit watchers switched off (the debit path as before
  balance_watch.note returns at once);
- watched: the watchers on, and the account has a low-balance threshold and
  auto top-up configured (neither crossed: a crossing is rare and is the
  alert's or the top-up's own work, not the debit's);
- the two alternate in slices (the disk's fsync latency drifts), and the
  ratio watched / plain must stay >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from benchmarks._common import scratch_postgres
from benchmarks.bench_ledger import SECONDS, _interleaved, _new_account, _say
from workroom_app import db
from workroom_app.billing import auto_top_up, balance_watch, ledger, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import write_session
from workroom_app.schema import upgrade


def _configure(engine, acct: int) -> None:
    from workroom_app.billing import alerts

    with write_session(engine) as s:
        subscriptions.save_card(s, acct, CardForm("4242424242424242", 12, 2030, "123", "Bench"))
        alerts.save_alert_settings(
            s,
            acct,
            low_balance_threshold=100,
            email_low_balance=True,
            email_credits_expiring=True,
            email_payment_failed=True,
            email_plan_ended=True,
        )
        auto_top_up.save_settings(
            s, acct, enabled=True, threshold=50, pack_key="credits_500", monthly_cap=3
        )


def _bench(name: str, engine) -> dict:
    watchers = list(balance_watch._watchers)
    plain_acct = _new_account(engine, "plain", 10**9)
    watched_acct = _new_account(engine, "watched", 10**9)
    _configure(engine, watched_acct)

    def plain(i: int) -> None:
        balance_watch._watchers[:] = []
        with write_session(engine) as s:
            ledger.debit(s, plain_acct, 1, feature="image", idempotency_key=f"p:{plain_acct}:{i}")

    def watched(i: int) -> None:
        balance_watch._watchers[:] = watchers
        with write_session(engine) as s:
            ledger.debit(
                s, watched_acct, 1, feature="image", idempotency_key=f"w:{watched_acct}:{i}"
            )

    try:
        watched_ops, plain_ops = _interleaved(watched, plain, SECONDS)
    finally:
        balance_watch._watchers[:] = watchers
    _say(
        f"[{name}] plain {plain_ops:,.0f} debits/s, with alerts and auto top-up {watched_ops:,.0f} debits/s, "
        f"ratio {watched_ops / plain_ops:.3f}"
    )
    return {
        "plain_debit_ops_per_s": round(plain_ops, 1),
        "watched_debit_ops_per_s": round(watched_ops, 1),
        "ratio": round(watched_ops / plain_ops, 3),
    }


def run(postgres_url: str | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="workroom-bench-alerts-"))
    engine = db.make_engine(f"sqlite:///{tmp / 'bench.db'}")
    try:
        upgrade(engine)
        results = {"sqlite": _bench("sqlite", engine)}
    finally:
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    if postgres_url:
        with scratch_postgres(postgres_url) as url:
            engine = db.make_engine(url.render_as_string(hide_password=False))
            try:
                upgrade(engine)
                results["postgres"] = _bench("postgres", engine)
            finally:
                engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    args = parser.parse_args(argv)
    results = run(os.environ.get("WORKROOM_TEST_POSTGRES_URL") or None)
    if args.json:
        print(json.dumps({"benchmark": "alert_debits", **results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
