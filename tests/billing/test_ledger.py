"""The credit ledger's rules (PRODUCT_RULES §1-2), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from tests.support.ledger import (
    T0,
    assert_invariants,
    draws_of,
    ledger_count,
    make_account,
    state,
)
from workroom_app.billing import clock, ledger
from workroom_app.billing.ledger import InsufficientCredits, LedgerError
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import AccountBalance, ActionType, CreditGrant, GrantSource, LedgerEntry


@pytest.fixture(autouse=True)
def _pin_clock():
    with clock.pinned(T0):
        yield


def _grant(
    engine,
    acct,
    amount,
    key,
    *,
    expires_at=None,
    subscription_id=None,
    action=ActionType.SUBSCRIPTION_CREDITS,
    source=GrantSource.SUBSCRIPTION,
):
    with write_session(engine) as s:
        return ledger.grant(
            s,
            acct,
            amount,
            action_type=action,
            source=source,
            idempotency_key=key,
            expires_at=expires_at,
            subscription_id=subscription_id,
        )


def _debit(engine, acct, amount, key, feature="image"):
    with write_session(engine) as s:
        return ledger.debit(s, acct, amount, feature=feature, idempotency_key=key)


def _refund(engine, entry_id, key):
    with write_session(engine) as s:
        return ledger.refund(s, entry_id, idempotency_key=key)


def _grant_left(engine, grant_id):
    with read_session(engine) as s:
        return s.get(CreditGrant, grant_id).amount_left


# ------------------------------------------------------------------ basics


def test_open_account_twice_changes_nothing(engine):
    acct = make_account(engine)
    with write_session(engine) as s:
        ledger.open_account(s, acct)
        assert ledger.balance(s, acct) == 0
    assert_invariants(engine, acct)


def test_grant_writes_grant_entry_and_balance(engine):
    acct = make_account(engine)
    expiry = T0 + timedelta(days=30)
    r = _grant(engine, acct, 800, "g1", expires_at=expiry, subscription_id=7)
    assert (r.amount, r.balance_after, r.created) == (800, 800, True)
    st = assert_invariants(engine, acct)
    [entry] = st["entries"]
    assert entry.id == r.entry_id and entry.action_type == "subscription_credits"
    [g] = st["grants"]
    assert (g.amount_granted, g.amount_left, g.expires_at, g.subscription_id) == (
        800,
        800,
        expiry,
        7,
    )
    assert st["next_expiry_at"] == expiry


def test_same_key_twice_returns_first_result_and_changes_nothing(engine):
    acct = make_account(engine)
    first = _grant(engine, acct, 100, "grant-key")
    again = _grant(engine, acct, 100, "grant-key")
    assert again == ledger.LedgerResult(first.entry_id, 100, 100, False)
    d1 = _debit(engine, acct, 30, "debit-key")
    before = ledger_count(engine)
    d2 = _debit(engine, acct, 30, "debit-key")
    assert d2 == ledger.LedgerResult(d1.entry_id, -30, 70, False)
    assert ledger_count(engine) == before
    assert state(engine, acct)["balance"] == 70
    assert_invariants(engine, acct)


def test_replayed_debit_returns_first_result_even_when_balance_is_now_too_low(engine):
    acct = make_account(engine)
    _grant(engine, acct, 30, "g")
    d1 = _debit(engine, acct, 30, "d")
    assert _debit(engine, acct, 30, "d") == ledger.LedgerResult(d1.entry_id, -30, 0, False)


def test_key_reused_for_a_different_change_is_refused(engine):
    acct = make_account(engine)
    _grant(engine, acct, 100, "k")
    with pytest.raises(LedgerError, match="already used"):
        _debit(engine, acct, 10, "k")
    with pytest.raises(LedgerError, match="already used"):
        _grant(engine, acct, 99, "k")
    assert state(engine, acct)["balance"] == 100


@pytest.mark.parametrize("bad", [0, -5, True, False, 1.0, 2.5, "10", None])
def test_amounts_must_be_positive_whole_numbers(engine, bad):
    acct = make_account(engine)
    _grant(engine, acct, 100, "seed")
    with pytest.raises(LedgerError):
        _grant(engine, acct, bad, "bad-grant")
    with pytest.raises(LedgerError):
        _debit(engine, acct, bad, "bad-debit")
    with pytest.raises(LedgerError), write_session(engine) as s:
        ledger.staff_adjust(
            s,
            acct,
            bad if bad not in (-5,) else 0,
            reason="r",
            actor_id=1,
            idempotency_key="bad-staff",
        )
    assert ledger_count(engine) == 1
    assert_invariants(engine, acct)


def test_bad_input_is_refused_with_a_readable_message(engine):
    acct = make_account(engine)
    with write_session(engine) as s:
        with pytest.raises(LedgerError, match="expiry must be in the future"):
            ledger.grant(
                s,
                acct,
                5,
                action_type=ActionType.MONTHLY_CREDITS,
                source=GrantSource.MONTHLY,
                idempotency_key="past",
                expires_at=T0 - timedelta(seconds=1),
            )
        with pytest.raises(LedgerError, match="time zone"):
            ledger.grant(
                s,
                acct,
                5,
                action_type=ActionType.MONTHLY_CREDITS,
                source=GrantSource.MONTHLY,
                idempotency_key="naive",
                expires_at=(T0 + timedelta(days=1)).replace(tzinfo=None),
            )
        with pytest.raises(LedgerError, match="cannot be recorded as 'generation'"):
            ledger.grant(
                s,
                acct,
                5,
                action_type=ActionType.GENERATION,
                source=GrantSource.MONTHLY,
                idempotency_key="wrong-action",
            )
        with pytest.raises(LedgerError, match="Unknown grant source"):
            ledger.grant(
                s,
                acct,
                5,
                action_type=ActionType.MONTHLY_CREDITS,
                source="gift",
                idempotency_key="wrong-source",
            )
        with pytest.raises(LedgerError, match="idempotency key is required"):
            ledger.debit(s, acct, 5, feature="image", idempotency_key="  ")
        with pytest.raises(LedgerError, match="feature is required"):
            ledger.debit(s, acct, 5, feature="", idempotency_key="nofeature")
        with pytest.raises(LedgerError, match="no credit balance"):
            ledger.debit(s, acct + 1000, 5, feature="image", idempotency_key="noacct")
    assert ledger_count(engine) == 0


# --------------------------------------------------------------- spending


def test_balance_never_goes_below_zero(engine):
    acct = make_account(engine)
    _grant(engine, acct, 50, "g")
    with pytest.raises(InsufficientCredits) as info:
        _debit(engine, acct, 51, "too-much")
    assert (info.value.needed, info.value.available) == (51, 50)
    assert "needs 51 credits" in str(info.value) and "balance is 50" in str(info.value)
    assert _debit(engine, acct, 50, "exact").balance_after == 0
    with pytest.raises(InsufficientCredits):
        _debit(engine, acct, 1, "one-more")
    st = assert_invariants(engine, acct)
    assert st["balance"] == 0 and len(st["entries"]) == 2


def test_debit_draws_soonest_expiring_first_and_never_expiring_last(engine):
    acct = make_account(engine)
    trial = _grant(
        engine, acct, 50, "trial", action=ActionType.TRIAL_GRANT, source=GrantSource.TRIAL
    )
    late = _grant(engine, acct, 100, "late", expires_at=T0 + timedelta(days=60))
    soon = _grant(engine, acct, 100, "soon", expires_at=T0 + timedelta(days=10))
    by_name = {
        name: draws_of(_entry(engine, r.entry_id))[0][0]
        for name, r in (("trial", trial), ("late", late), ("soon", soon))
    }

    d = _debit(engine, acct, 80, "d1")
    assert draws_of(_entry(engine, d.entry_id)) == [[by_name["soon"], 80]]
    # Crosses buckets: the rest of "soon", then "late"; the trial is untouched.
    d = _debit(engine, acct, 70, "d2")
    assert draws_of(_entry(engine, d.entry_id)) == [[by_name["soon"], 20], [by_name["late"], 50]]
    assert _grant_left(engine, by_name["trial"]) == 50
    st = assert_invariants(engine, acct)
    assert st["next_expiry_at"] == T0 + timedelta(days=60)
    d = _debit(engine, acct, 60, "d3")
    assert draws_of(_entry(engine, d.entry_id)) == [[by_name["late"], 50], [by_name["trial"], 10]]
    st = assert_invariants(engine, acct)
    assert st["balance"] == 40 and st["next_expiry_at"] is None


def test_equal_expiries_draw_from_the_oldest_grant_first(engine):
    acct = make_account(engine)
    e = T0 + timedelta(days=5)
    a = _grant(engine, acct, 10, "a", expires_at=e)
    _grant(engine, acct, 10, "b", expires_at=e)
    d = _debit(engine, acct, 5, "d")
    assert draws_of(_entry(engine, d.entry_id))[0][0] == draws_of(_entry(engine, a.entry_id))[0][0]


def test_expired_but_unswept_credits_are_not_spendable(engine):
    acct = make_account(engine)
    _grant(engine, acct, 100, "month", expires_at=T0 + timedelta(days=30))
    _grant(engine, acct, 20, "trial", action=ActionType.TRIAL_GRANT, source=GrantSource.TRIAL)
    with clock.pinned(T0 + timedelta(days=30)):
        # The cached balance still says 120 until something sweeps…
        with read_session(engine) as s:
            assert ledger.balance(s, acct) == 120
        # …but a debit expires the due grant first and only the trial is left.
        with pytest.raises(InsufficientCredits) as info:
            _debit(engine, acct, 21, "d-too-much")
        assert info.value.available == 20
        d = _debit(engine, acct, 15, "d")
        assert d.balance_after == 5
    st = assert_invariants(engine, acct)
    kinds = [(e.action_type, e.amount, e.balance_after) for e in st["entries"]]
    assert kinds[-2:] == [("expiry", -100, 20), ("generation", -15, 5)]


def test_debit_stays_lean_on_the_hot_path(engine, monkeypatch):
    """The common debit: SQLite four statements (key, check-and-take balance,
    draw, entry); PostgreSQL two, sent in one round trip (lock, then one
    statement that checks, takes, draws and writes). Counted at the driver,
    below SQLAlchemy, plus anything SQLAlchemy itself sends."""
    from sqlalchemy import event

    acct = make_account(engine)
    _grant(engine, acct, 100, "g")
    statements: list[str] = []

    def _core(_conn, _cursor, statement, *args):
        statements.append(statement)

    with write_session(engine) as s:
        raw = s.connection().connection.driver_connection
        if engine.dialect.name == "sqlite":
            raw.set_trace_callback(statements.append)
        else:
            original = type(raw).execute

            def _execute(self, query, *args, **kwargs):
                statements.append(query)
                return original(self, query, *args, **kwargs)

            monkeypatch.setattr(type(raw), "execute", _execute)
        event.listen(engine, "before_cursor_execute", _core)
        try:
            result = ledger.debit(s, acct, 10, feature="image", idempotency_key="hot")
        finally:
            event.remove(engine, "before_cursor_execute", _core)
            monkeypatch.undo()
            if engine.dialect.name == "sqlite":
                raw.set_trace_callback(None)
    assert len(statements) == (4 if engine.dialect.name == "sqlite" else 2), statements
    assert (result.amount, result.balance_after) == (-10, 90)
    assert_invariants(engine, acct)


# ----------------------------------------------------------------- expiry


def test_expire_due_writes_one_expiry_row_and_is_repeatable(engine):
    a = make_account(engine)
    b = make_account(engine)
    _grant(engine, a, 100, "a1", expires_at=T0 + timedelta(days=1))
    _grant(engine, a, 40, "a2", expires_at=T0 + timedelta(days=2))
    _grant(engine, a, 7, "a3", expires_at=T0 + timedelta(days=9))
    _grant(engine, b, 30, "b1", expires_at=T0 + timedelta(days=1))
    _debit(engine, a, 30, "spend")
    later = T0 + timedelta(days=3)
    with write_session(engine) as s:
        results = ledger.expire_due(s, now=later)
    assert sorted((r.amount, r.balance_after) for r in results) == [(-110, 7), (-30, 0)]
    with write_session(engine) as s:
        assert ledger.expire_due(s, now=later) == []
    st = assert_invariants(engine, a)
    assert st["next_expiry_at"] == T0 + timedelta(days=9)
    assert all(g.closed_at == later for g in st["grants"][:2])
    assert_invariants(engine, b)


def test_expire_due_for_one_account_leaves_the_others(engine):
    a = make_account(engine)
    b = make_account(engine)
    _grant(engine, a, 10, "a", expires_at=T0 + timedelta(days=1))
    _grant(engine, b, 10, "b", expires_at=T0 + timedelta(days=1))
    with write_session(engine) as s:
        assert len(ledger.expire_due(s, now=T0 + timedelta(days=2), account_id=a)) == 1
    assert state(engine, a)["balance"] == 0
    assert state(engine, b)["balance"] == 10


# ---------------------------------------------------------------- refunds


def test_refund_restores_the_same_grants_exactly_once(engine):
    acct = make_account(engine)
    _grant(engine, acct, 10, "soon", expires_at=T0 + timedelta(days=3))
    _grant(engine, acct, 100, "later", expires_at=T0 + timedelta(days=30))
    d = _debit(engine, acct, 25, "d")
    assert assert_invariants(engine, acct)["next_expiry_at"] == T0 + timedelta(days=30)
    r = _refund(engine, d.entry_id, "r1")
    assert (r.amount, r.balance_after, r.created) == (25, 110, True)
    st = assert_invariants(engine, acct)
    assert [g.amount_left for g in st["grants"]] == [10, 100]
    assert st["next_expiry_at"] == T0 + timedelta(days=3)  # the restored bucket expires first again
    # Same key, then a different key: the first refund, nothing changes.
    assert _refund(engine, d.entry_id, "r1") == ledger.LedgerResult(r.entry_id, 25, 110, False)
    assert _refund(engine, d.entry_id, "r2") == ledger.LedgerResult(r.entry_id, 25, 110, False)
    assert len(state(engine, acct)["entries"]) == 4
    refund_row = _entry(engine, r.entry_id)
    assert (refund_row.reference_type, refund_row.reference_id, refund_row.feature) == (
        "debit",
        str(d.entry_id),
        "image",
    )


def test_refund_after_the_grant_expired_goes_to_a_never_expiring_refund_grant(engine):
    acct = make_account(engine)
    _grant(engine, acct, 10, "month", expires_at=T0 + timedelta(days=3))
    _grant(engine, acct, 50, "trial", action=ActionType.TRIAL_GRANT, source=GrantSource.TRIAL)
    d = _debit(engine, acct, 25, "d")  # 10 from month, 15 from trial
    with clock.pinned(T0 + timedelta(days=4)):
        r = _refund(engine, d.entry_id, "r")
    st = assert_invariants(engine, acct)
    assert r.amount == 25 and st["balance"] == 60
    by_source = {g.source: g for g in st["grants"]}
    assert by_source["trial"].amount_left == 50  # its 15 went back
    assert by_source["refund"].amount_left == 10 and by_source["refund"].expires_at is None
    assert by_source["subscription"].amount_left == 0
    # The expired (unswept) month grant was not revived: the next debit still
    # cannot spend it.
    with clock.pinned(T0 + timedelta(days=4)):
        with pytest.raises(InsufficientCredits) as info:
            _debit(engine, acct, 61, "d2")
        assert info.value.available == 60


def test_refund_after_a_burn_does_not_revive_the_burned_grant(engine):
    acct = make_account(engine)
    _grant(engine, acct, 100, "plan", expires_at=T0 + timedelta(days=30), subscription_id=3)
    d = _debit(engine, acct, 40, "d")
    with write_session(engine) as s:
        burn = ledger.burn_subscription_grants(
            s, acct, 3, action_type=ActionType.PLAN_CHANGE, idempotency_key="burn"
        )
    assert (burn.amount, burn.balance_after) == (-60, 0)
    r = _refund(engine, d.entry_id, "r")
    st = assert_invariants(engine, acct)
    assert (r.amount, st["balance"]) == (40, 40)
    assert [(g.source, g.amount_left) for g in st["grants"]] == [
        ("subscription", 0),
        ("refund", 40),
    ]


def test_only_generation_charges_can_be_refunded(engine):
    acct = make_account(engine)
    g = _grant(engine, acct, 100, "g")
    with pytest.raises(LedgerError, match="Only a generation"):
        _refund(engine, g.entry_id, "r")
    with pytest.raises(LedgerError, match="no such charge"):
        _refund(engine, 999999, "r")
    with write_session(engine) as s:
        adj = ledger.staff_adjust(s, acct, -5, reason="typo", actor_id=acct, idempotency_key="s")
    with pytest.raises(LedgerError, match="Only a generation"):
        _refund(engine, adj.entry_id, "r")
    assert_invariants(engine, acct)


# ------------------------------------------------------------------- burns


def test_burn_zeroes_only_that_subscriptions_grants(engine):
    acct = make_account(engine)
    _grant(engine, acct, 50, "trial", action=ActionType.TRIAL_GRANT, source=GrantSource.TRIAL)
    _grant(engine, acct, 800, "sub1", expires_at=T0 + timedelta(days=30), subscription_id=1)
    _grant(
        engine,
        acct,
        2200,
        "upg",
        expires_at=T0 + timedelta(days=30),
        subscription_id=1,
        action=ActionType.PLAN_CHANGE,
        source=GrantSource.PLAN_CHANGE,
    )
    _grant(engine, acct, 5, "other", expires_at=T0 + timedelta(days=40), subscription_id=2)
    _debit(engine, acct, 100, "spend")
    with write_session(engine) as s:
        r = ledger.burn_subscription_grants(
            s,
            acct,
            1,
            action_type=ActionType.PLAN_CHANGE,
            idempotency_key="burn-1",
            reference_type="plan_change",
            reference_id="42",
        )
    assert (r.amount, r.balance_after) == (-2900, 55)
    with write_session(engine) as s:
        again = ledger.burn_subscription_grants(
            s, acct, 1, action_type=ActionType.PLAN_CHANGE, idempotency_key="burn-1"
        )
        nothing = ledger.burn_subscription_grants(
            s, acct, 1, action_type=ActionType.EXPIRY, idempotency_key="burn-2"
        )
    assert again == ledger.LedgerResult(r.entry_id, -2900, 55, False)
    assert nothing is None
    st = assert_invariants(engine, acct)
    assert st["next_expiry_at"] == T0 + timedelta(days=40)
    assert st["entries"][-1].action_type == "plan_change"
    with pytest.raises(LedgerError), write_session(engine) as s:
        ledger.burn_subscription_grants(
            s, acct, 2, action_type=ActionType.GENERATION, idempotency_key="burn-3"
        )


# --------------------------------------------------------- staff adjustment


def test_staff_adjustment_needs_reason_and_actor_and_keeps_balance_non_negative(engine):
    acct = make_account(engine)
    staff = make_account(engine, open_balance=False)
    with write_session(engine) as s:
        with pytest.raises(LedgerError, match="reason is required"):
            ledger.staff_adjust(s, acct, 10, reason="   ", actor_id=staff, idempotency_key="a")
        with pytest.raises(LedgerError, match="staff member"):
            ledger.staff_adjust(s, acct, 10, reason="goodwill", actor_id=None, idempotency_key="a")
        up = ledger.staff_adjust(
            s, acct, 10, reason="goodwill", actor_id=staff, idempotency_key="a"
        )
    assert (up.amount, up.balance_after) == (10, 10)
    with (
        pytest.raises(InsufficientCredits, match="never goes below zero"),
        write_session(engine) as s,
    ):
        ledger.staff_adjust(s, acct, -11, reason="oops", actor_id=staff, idempotency_key="b")
    with write_session(engine) as s:
        down = ledger.staff_adjust(s, acct, -10, reason="oops", actor_id=staff, idempotency_key="b")
    assert (down.amount, down.balance_after) == (-10, 0)
    st = assert_invariants(engine, acct)
    assert [(e.action_type, e.reason, e.actor_id) for e in st["entries"]] == [
        ("staff_adjustment", "goodwill", staff),
        ("staff_adjustment", "oops", staff),
    ]
    assert st["grants"][0].source == "staff" and st["grants"][0].expires_at is None


# ----------------------------------------------------------- append-only


def test_ledger_rows_cannot_be_updated_or_deleted(engine):
    acct = make_account(engine)
    r = _grant(engine, acct, 10, "g")
    for sql in (
        f"UPDATE ledger_entry SET amount = 1000 WHERE id = {r.entry_id}",
        f"DELETE FROM ledger_entry WHERE id = {r.entry_id}",
    ):
        with pytest.raises(DBAPIError, match="append-only"), write_session(engine) as s:
            s.execute(text(sql))
    assert _entry(engine, r.entry_id).amount == 10


# ------------------------------------------------------------------ checker


def test_check_ledger_finds_each_kind_of_damage(engine):
    acct = make_account(engine, "victim@example.test")
    other = make_account(engine, "fine@example.test")
    _grant(engine, other, 5, "o")
    _grant(engine, acct, 100, "g", expires_at=T0 + timedelta(days=9))
    d = _debit(engine, acct, 10, "d")
    _refund(engine, d.entry_id, "r")
    with read_session(engine) as s:
        assert check_ledger(s) == []
        assert check_ledger(s, "nobody@example.test") == [
            "no account with email nobody@example.test"
        ]
    with write_session(engine) as s:
        # Corrupt it the way a bug outside the ledger module would.
        s.execute(
            text(
                f"UPDATE account_balance SET balance = balance + 2, next_expiry_at = NULL "
                f"WHERE account_id = {acct}"
            )
        )
        s.add(
            LedgerEntry(
                account_id=acct,
                action_type="refund",
                amount=10,
                balance_after=7,
                reference_type="debit",
                reference_id=str(d.entry_id),
                idempotency_key="forged",
                created_at=T0,
            )
        )
        s.execute(
            text(
                f"UPDATE credit_grant SET amount_left = amount_granted + 1 WHERE account_id = {acct}"
            )
        )
    with read_session(engine) as s:
        problems = "\n".join(check_ledger(s, "victim@example.test"))
        assert check_ledger(s, "fine@example.test") == []
    for expected in (
        "!= sum of ledger",
        "!= sum of grants",
        "balance_after 7 != running sum",
        "refunded twice",
        "grant",
        "next_expiry_at",
    ):
        assert expected in problems, (expected, problems)


def _entry(engine, entry_id) -> LedgerEntry:
    with read_session(engine) as s:
        return s.execute(select(LedgerEntry).where(LedgerEntry.id == entry_id)).scalar_one()


def test_balance_of_unopened_account_is_zero(engine):
    acct = make_account(engine, open_balance=False)
    with read_session(engine) as s:
        assert ledger.balance(s, acct) == 0
        assert s.get(AccountBalance, acct) is None


def test_draining_the_soonest_grant_moves_next_expiry_on(engine):
    acct = make_account(engine)
    _grant(engine, acct, 10, "soon", expires_at=T0 + timedelta(days=3))
    _grant(engine, acct, 100, "later", expires_at=T0 + timedelta(days=30))
    _debit(engine, acct, 10, "exactly-the-first-bucket")
    st = assert_invariants(engine, acct)
    assert st["next_expiry_at"] == T0 + timedelta(days=30)
    assert [g.amount_left for g in st["grants"]] == [0, 100]
