"""The PostgreSQL debit fast path (see the package docstring and docs/benchmarks.md, "Ledger")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from workroom_app.billing.ledger.core import (
    LedgerResult,
    _draw,
    _next_expiry,
    _set_balance,
    _write_entry,
)
from workroom_app.billing.ledger.errors import LedgerError

#
# Each statement costs a network round trip (plus ~100 us of SQLAlchemy), so
# the common debit sends two statements in one round trip (a psycopg
# pipeline): (1) lock the balance row; (2) one statement of data-modifying CTEs
# that, only if the key is unused, the balance covers the amount and no grant
# is due to expire, takes the credits from the balance, draws them from the
# first grant in spending order and inserts the ledger row. PostgreSQL runs
# (2) after (1) has the lock, with a fresh snapshot (READ COMMITTED), so it sees
# every earlier writer's committed rows. When (2) takes nothing, the general
# path runs under the lock (1) took.

_PG_LOCK = (
    "SELECT balance, next_expiry_at FROM account_balance WHERE account_id = %(acct)s FOR UPDATE"
)
_PG_TAKE = """
WITH b AS (
    UPDATE account_balance SET balance = balance - %(amount)s, updated_at = %(now)s
    WHERE account_id = %(acct)s AND balance >= %(amount)s
      AND (next_expiry_at IS NULL OR next_expiry_at > %(now)s)
      AND NOT EXISTS (SELECT 1 FROM ledger_entry WHERE idempotency_key = %(key)s)
    RETURNING balance, next_expiry_at
), d AS (
    UPDATE credit_grant SET amount_left = amount_left - %(amount)s
    WHERE id = (
        SELECT id FROM credit_grant
        WHERE account_id = %(acct)s AND amount_left > 0
          AND (expires_at IS NULL OR expires_at > %(now)s)
        ORDER BY expires_at IS NULL, expires_at, id LIMIT 1
    ) AND amount_left >= %(amount)s AND EXISTS (SELECT 1 FROM b)
    RETURNING id, amount_left, expires_at
), e AS (
    INSERT INTO ledger_entry (account_id, action_type, feature, amount, balance_after,
        reference_type, reference_id, idempotency_key, reason, actor_id, draws, created_at)
    SELECT %(acct)s, %(action)s, %(feature)s, -%(amount)s, b.balance, %(reference_type)s,
        %(reference_id)s, %(key)s, %(reason)s, %(actor_id)s,
        '[[' || d.id || ',' || %(amount)s || ']]', %(now)s
    FROM b, d
    RETURNING id
)
SELECT b.balance, b.next_expiry_at, d.id, d.amount_left, d.expires_at, e.id
FROM b LEFT JOIN d ON true LEFT JOIN e ON true
"""


def _pg_fast_spend(
    conn: Connection,
    account_id: int,
    amount: int,
    key: str,
    action: str,
    now: datetime,
    extra: tuple,
) -> LedgerResult | tuple[int, datetime | None]:
    """The LedgerResult, or (balance, next_expiry_at) of the now-locked row when
    the general path has to decide."""
    feature, reference_type, reference_id, reason, actor_id = extra
    raw = conn.connection.driver_connection
    assert raw is not None  # a connection in a transaction always has its psycopg connection
    params = {
        "acct": account_id,
        "amount": amount,
        "now": now,
        "key": key,
        "action": action,
        "feature": feature,
        "reference_type": reference_type,
        "reference_id": reference_id,
        "reason": reason,
        "actor_id": actor_id,
    }
    with raw.pipeline():
        locked = raw.execute(_PG_LOCK, params)
        taken = raw.execute(_PG_TAKE, params)
    lock_row = locked.fetchone()
    row = taken.fetchone()
    if lock_row is None:
        raise LedgerError(f"Account {account_id} has no credit balance yet.")
    if row is None:
        return lock_row[0], lock_row[1]
    new_balance, next_expiry, grant_id, left, expires_at, entry_id = row
    if grant_id is None:
        # The balance is taken but the first grant does not cover it: draw
        # across grants the general way.
        draws, new_next_expiry = _draw(conn, account_id, amount, next_expiry, now)
        entry_id = _write_entry(
            conn,
            account_id=account_id,
            action_type=action,
            amount=-amount,
            balance_after=new_balance,
            idempotency_key=key,
            now=now,
            feature=feature,
            reference_type=reference_type,
            reference_id=reference_id,
            reason=reason,
            actor_id=actor_id,
            draws=draws,
        )
    else:
        new_next_expiry = next_expiry
        if left == 0 and expires_at is not None and expires_at == next_expiry:
            new_next_expiry = _next_expiry(conn, account_id)
    if new_next_expiry != next_expiry:
        _set_balance(conn, account_id, new_balance, new_next_expiry, now)
    return LedgerResult(entry_id, -amount, new_balance, True)
