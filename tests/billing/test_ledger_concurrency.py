"""32 debits at once against a balance that covers only some of them: exactly
as many go through as it covers, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from tests.support.ledger import assert_invariants, make_account
from workroom_app.billing import ledger
from workroom_app.billing.ledger import InsufficientCredits
from workroom_app.db import write_session
from workroom_app.models import ActionType, GrantSource

WORKERS = 32
COST = 10


@pytest.mark.parametrize("starting", [100, 105, 0, 400])
def test_concurrent_debits_never_overdraw(engine, starting):
    acct = make_account(engine)
    if starting:
        with write_session(engine) as s:
            # Two buckets so some debits have to cross from one to the other.
            first = starting // 2 + 3
            ledger.grant(
                s,
                acct,
                first,
                action_type=ActionType.TRIAL_GRANT,
                source=GrantSource.TRIAL,
                idempotency_key="trial",
            )
            ledger.grant(
                s,
                acct,
                starting - first,
                action_type=ActionType.MONTHLY_CREDITS,
                source=GrantSource.MONTHLY,
                idempotency_key="month",
            )
    barrier = threading.Barrier(WORKERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        try:
            with write_session(engine) as s:
                ledger.debit(s, acct, COST, feature="image", idempotency_key=f"job-{i}")
            outcome = "ok"
        except InsufficientCredits:
            outcome = "refused"
        except Exception as exc:  # noqa: BLE001  (any other error is a failure of the test)
            outcome = f"error: {exc!r}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == WORKERS
    covered = min(WORKERS, starting // COST)
    assert outcomes.count("ok") == covered, outcomes
    assert outcomes.count("refused") == WORKERS - covered, outcomes
    st = assert_invariants(engine, acct)
    assert st["balance"] == starting - covered * COST
    assert sum(1 for e in st["entries"] if e.action_type == "generation") == covered
