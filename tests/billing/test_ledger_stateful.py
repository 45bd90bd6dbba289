"""Random sequences of grants, debits, refunds (repeated too), clock advances,
expiries, burns and staff adjustments, checked against a small in-memory model
of PRODUCT_RULES §1-2 after every step (SQLite)."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from tests.support.ledger import T0, assert_invariants
from workroom_app import db
from workroom_app.billing import clock, ledger
from workroom_app.billing.ledger import InsufficientCredits
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, ActionType, CreditGrant, GrantSource, LedgerEntry
from workroom_app.schema import upgrade

# One migrated database, copied for every example: migrating each time would
# cost most of the test's time budget.
_TEMPLATE: Path | None = None


def _template() -> Path:
    global _TEMPLATE
    if _TEMPLATE is None:
        path = Path(tempfile.mkdtemp(prefix="ledger-stateful-")) / "template.db"
        engine = db.make_engine(f"sqlite:///{path}")
        upgrade(engine)
        with write_session(engine) as s:
            s.add(Account(id=1, email="model@example.test", password_hash="x", created_at=T0))
            s.add(Account(id=2, email="staff@example.test", password_hash="x", created_at=T0))
            s.flush()
            ledger.open_account(s, 1)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        _TEMPLATE = path
    return _TEMPLATE


@dataclass
class MGrant:
    left: int
    expires_at: datetime | None
    subscription: int | None
    closed: bool = False


@dataclass
class MDebit:
    entry_id: int
    amount: int
    draws: list[tuple[int, int]]
    refund: tuple[int, int] | None = None  # (entry id, balance_after)


@dataclass
class Model:
    grants: dict[int, MGrant] = field(default_factory=dict)
    debits: list[MDebit] = field(default_factory=list)
    keys: dict[str, ledger.LedgerResult] = field(default_factory=dict)

    @property
    def balance(self) -> int:
        return sum(g.left for g in self.grants.values())

    def sweep(self, now: datetime) -> None:
        for g in self.grants.values():
            if g.left and g.expires_at is not None and g.expires_at <= now:
                g.left, g.closed = 0, True

    def live(self, gid: int, now: datetime) -> bool:
        g = self.grants[gid]
        return not g.closed and (g.expires_at is None or g.expires_at > now)

    def draw(self, amount: int, now: datetime) -> list[tuple[int, int]]:
        order = sorted(
            (gid for gid, g in self.grants.items() if g.left and self.live(gid, now)),
            key=lambda gid: (
                self.grants[gid].expires_at is None,
                self.grants[gid].expires_at or now,
                gid,
            ),
        )
        draws, remaining = [], amount
        for gid in order:
            take = min(self.grants[gid].left, remaining)
            self.grants[gid].left -= take
            draws.append((gid, take))
            remaining -= take
            if not remaining:
                break
        assert remaining == 0
        return draws


class LedgerMachine(RuleBasedStateMachine):
    ACCOUNT = 1
    STAFF = 2

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-sm-"))
        shutil.copy(_template(), self.dir / "l.db")
        self.engine = db.make_engine(f"sqlite:///{self.dir / 'l.db'}")
        self.now = T0
        clock.set_pinned(self.now)
        self.model = Model()
        self.counter = 0

    def teardown(self) -> None:
        clock.set_pinned(None)
        self.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def _entry(self, entry_id: int) -> LedgerEntry:
        with read_session(self.engine) as s:
            return s.execute(select(LedgerEntry).where(LedgerEntry.id == entry_id)).scalar_one()

    # ------------------------------------------------------------- rules

    @rule(
        amount=st.integers(1, 120),
        expiry_days=st.none() | st.integers(1, 45),
        subscription=st.none() | st.integers(1, 2),
    )
    def grant(self, amount, expiry_days, subscription):
        expires = self.now + timedelta(days=expiry_days) if expiry_days else None
        key = self._key("grant")
        with write_session(self.engine) as s:
            r = ledger.grant(
                s,
                self.ACCOUNT,
                amount,
                action_type=ActionType.MONTHLY_CREDITS,
                source=GrantSource.MONTHLY,
                idempotency_key=key,
                expires_at=expires,
                subscription_id=subscription,
            )
        gid = json.loads(self._entry(r.entry_id).draws)[0][0]
        self.model.grants[gid] = MGrant(amount, expires, subscription)
        self.model.keys[key] = r
        assert r.created and r.balance_after == self.model.balance

    @rule(amount=st.integers(1, 150))
    def debit(self, amount):
        key = self._key("debit")
        saved = copy.deepcopy(self.model.grants)
        self.model.sweep(self.now)
        available = self.model.balance
        try:
            with write_session(self.engine) as s:
                r = ledger.debit(s, self.ACCOUNT, amount, feature="video", idempotency_key=key)
        except InsufficientCredits as exc:
            assert amount > available
            assert (exc.needed, exc.available) == (amount, available)
            # The refused debit's transaction, its sweep included, rolled back.
            self.model.grants = saved
            return
        assert amount <= available
        draws = self.model.draw(amount, self.now)
        assert [tuple(d) for d in json.loads(self._entry(r.entry_id).draws)] == draws
        assert (r.amount, r.balance_after, r.created) == (-amount, self.model.balance, True)
        self.model.debits.append(MDebit(r.entry_id, amount, draws))
        self.model.keys[key] = r

    @precondition(lambda self: self.model.keys)
    @rule(pick=st.integers(0, 10**6))
    def replay_a_key(self, pick):
        key = sorted(self.model.keys)[pick % len(self.model.keys)]
        first = self.model.keys[key]
        kind = key.split("-")[0]
        with write_session(self.engine) as s:
            if kind == "grant":
                r = ledger.grant(
                    s,
                    self.ACCOUNT,
                    first.amount,
                    action_type=ActionType.MONTHLY_CREDITS,
                    source=GrantSource.MONTHLY,
                    idempotency_key=key,
                )
            elif kind == "debit":
                r = ledger.debit(
                    s, self.ACCOUNT, -first.amount, feature="video", idempotency_key=key
                )
            elif kind == "staff":
                r = ledger.staff_adjust(
                    s,
                    self.ACCOUNT,
                    first.amount,
                    reason="again",
                    actor_id=self.STAFF,
                    idempotency_key=key,
                )
            else:
                return
        assert r == ledger.LedgerResult(first.entry_id, first.amount, first.balance_after, False)

    @precondition(lambda self: self.model.debits)
    @rule(pick=st.integers(0, 10**6))
    def refund(self, pick):
        d = self.model.debits[pick % len(self.model.debits)]
        key = self._key("refund")
        with write_session(self.engine) as s:
            r = ledger.refund(s, d.entry_id, idempotency_key=key)
        if d.refund is not None:
            # Exactly once: any later request gets the first refund back.
            assert (r.entry_id, r.amount, r.balance_after, r.created) == (
                *d.refund[:1],
                d.amount,
                d.refund[1],
                False,
            )
            return
        leftover = 0
        for gid, part in d.draws:
            if self.model.live(gid, self.now):
                self.model.grants[gid].left += part
            else:
                leftover += part
        if leftover:
            new_gid = json.loads(self._entry(r.entry_id).draws)[-1][0]
            assert new_gid not in self.model.grants
            self.model.grants[new_gid] = MGrant(leftover, None, None)
        assert (r.amount, r.balance_after, r.created) == (d.amount, self.model.balance, True)
        d.refund = (r.entry_id, r.balance_after)

    @rule(days=st.integers(1, 20))
    def advance_clock(self, days):
        self.now += timedelta(days=days)
        clock.set_pinned(self.now)

    @rule()
    def expire_due(self):
        before = self.model.balance
        self.model.sweep(self.now)
        with write_session(self.engine) as s:
            results = ledger.expire_due(s)
        expired = before - self.model.balance
        assert [r.amount for r in results] == ([-expired] if expired else [])

    @rule(subscription=st.integers(1, 2), as_expiry=st.booleans())
    def burn(self, subscription, as_expiry):
        key = self._key("burn")
        targets = [
            g for g in self.model.grants.values() if g.subscription == subscription and g.left
        ]
        with write_session(self.engine) as s:
            r = ledger.burn_subscription_grants(
                s,
                self.ACCOUNT,
                subscription,
                action_type=ActionType.EXPIRY if as_expiry else ActionType.PLAN_CHANGE,
                idempotency_key=key,
            )
        total = sum(g.left for g in targets)
        for g in targets:
            g.left, g.closed = 0, True
        if total == 0:
            assert r is None
        else:
            assert (r.amount, r.balance_after) == (-total, self.model.balance)

    @rule(amount=st.integers(-150, 150).filter(bool))
    def staff_adjust(self, amount):
        key = self._key("staff")
        saved = copy.deepcopy(self.model.grants)
        if amount < 0:
            self.model.sweep(self.now)
        available = self.model.balance
        try:
            with write_session(self.engine) as s:
                r = ledger.staff_adjust(
                    s,
                    self.ACCOUNT,
                    amount,
                    reason="correction",
                    actor_id=self.STAFF,
                    idempotency_key=key,
                )
        except InsufficientCredits:
            assert -amount > available
            self.model.grants = saved
            return
        if amount > 0:
            gid = json.loads(self._entry(r.entry_id).draws)[0][0]
            self.model.grants[gid] = MGrant(amount, None, None)
        else:
            assert -amount <= available
            self.model.draw(-amount, self.now)
        assert r.balance_after == self.model.balance
        self.model.keys[key] = r

    # -------------------------------------------------------- invariants

    @invariant()
    def matches_model_and_keeps_every_invariant(self):
        st_ = assert_invariants(self.engine, self.ACCOUNT)  # includes check_ledger() == []
        assert st_["balance"] == self.model.balance
        with read_session(self.engine) as s:
            lefts = dict(s.execute(select(CreditGrant.id, CreditGrant.amount_left)).all())
        assert lefts == {gid: g.left for gid, g in self.model.grants.items()}


LedgerMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Minutes of random operations against a model: `make test` runs it, `make test-fast` does not.
TestLedgerStateMachine = pytest.mark.slow(LedgerMachine.TestCase)
