"""Shared helpers for the ledger tests (no tests of its own)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from workroom_app.billing import ledger
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, AccountBalance, CreditGrant, LedgerEntry

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def make_account(engine: Engine, email: str | None = None, *, open_balance: bool = True) -> int:
    with write_session(engine) as s:
        acct = Account(
            email=email or f"{uuid.uuid4().hex[:10]}@example.test",
            password_hash="x",
            created_at=T0,
        )
        s.add(acct)
        s.flush()
        if open_balance:
            ledger.open_account(s, acct.id)
        return acct.id


def state(engine: Engine, account_id: int) -> dict:
    """Everything the invariants talk about, for one account."""
    with read_session(engine) as s:
        bal = s.get(AccountBalance, account_id)
        entries = (
            s.execute(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account_id)
                .order_by(LedgerEntry.id)
            )
            .scalars()
            .all()
        )
        grants = (
            s.execute(
                select(CreditGrant)
                .where(CreditGrant.account_id == account_id)
                .order_by(CreditGrant.id)
            )
            .scalars()
            .all()
        )
        return {
            "balance": bal.balance if bal else None,
            "next_expiry_at": bal.next_expiry_at if bal else None,
            "entries": entries,
            "grants": grants,
        }


def assert_invariants(engine: Engine, account_id: int) -> dict:
    st = state(engine, account_id)
    entries, grants = st["entries"], st["grants"]
    assert st["balance"] >= 0
    assert st["balance"] == sum(e.amount for e in entries)
    assert st["balance"] == sum(g.amount_left for g in grants)
    running = 0
    for e in entries:
        running += e.amount
        assert e.balance_after == running, f"balance_after chain broken at row {e.id}"
        assert e.balance_after >= 0
    for g in grants:
        assert 0 <= g.amount_left <= g.amount_granted
    live_expiries = [g.expires_at for g in grants if g.amount_left > 0 and g.expires_at]
    assert st["next_expiry_at"] == (min(live_expiries) if live_expiries else None)
    with read_session(engine) as s:
        assert check_ledger(s) == []
    return st


def ledger_count(engine: Engine) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()


def draws_of(entry: LedgerEntry) -> list[list[int]]:
    return json.loads(entry.draws) if entry.draws else []
