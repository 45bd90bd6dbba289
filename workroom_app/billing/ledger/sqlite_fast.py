"""The SQLite debit fast path (see the package docstring and docs/benchmarks.md, "Ledger")."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.engine import Connection, Dialect

from workroom_app.billing.ledger.core import _L, LedgerResult, _draw, _next_expiry, _set_balance

#
# Measured (docs/benchmarks.md): through SQLAlchemy Core each statement costs
# ~80 us of Python on top of SQLite's own ~20 us, which alone put the debit
# below half the raw UPDATE+INSERT floor. The common debit therefore runs its
# four statements on the transaction's own sqlite3 connection (same
# transaction, same lock), binding and parsing datetimes with the column
# type's own processors so the stored format is exactly what Core writes.
# Anything unusual (short balance, a due expiry, a draw across grants, a
# replayed key) returns to the Core path.

_SQ_KEY = (
    "SELECT id, account_id, amount, balance_after, action_type, reference_id "
    "FROM ledger_entry WHERE idempotency_key = ?"
)
_SQ_TAKE = (
    "UPDATE account_balance SET balance = balance - ?, updated_at = ? "
    "WHERE account_id = ? AND balance >= ? AND (next_expiry_at IS NULL OR next_expiry_at > ?) "
    "RETURNING balance, next_expiry_at"
)
_SQ_DRAW = (
    "UPDATE credit_grant SET amount_left = amount_left - ? WHERE id = ("
    "SELECT id FROM credit_grant WHERE account_id = ? AND amount_left > 0 "
    "AND (expires_at IS NULL OR expires_at > ?) "
    "ORDER BY expires_at IS NULL, expires_at, id LIMIT 1) AND amount_left >= ? "
    "RETURNING id, amount_left, expires_at"
)
_SQ_INSERT = (
    "INSERT INTO ledger_entry (account_id, action_type, feature, amount, balance_after, "
    "reference_type, reference_id, idempotency_key, reason, actor_id, draws, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_sq_processors: dict[int, tuple] = {}


def _sq_datetime_processors(dialect: Dialect) -> tuple:
    procs = _sq_processors.get(id(dialect))
    if procs is None:
        col_type = _L.c.created_at.type.dialect_impl(dialect)
        procs = _sq_processors[id(dialect)] = (
            col_type.bind_processor(dialect),
            col_type.result_processor(dialect, None),
        )
    return procs


def _sqlite_fast_spend(
    conn: Connection,
    account_id: int,
    amount: int,
    key: str,
    action: str,
    now: datetime,
    extra: tuple,
) -> LedgerResult | None:
    feature, reference_type, reference_id, reason, actor_id = extra
    to_db, from_db = _sq_datetime_processors(conn.dialect)
    raw = conn.connection.driver_connection
    assert raw is not None  # a connection in a transaction always has its sqlite3 connection
    if raw.execute(_SQ_KEY, (key,)).fetchone() is not None:
        return None  # a replay: the Core path checks and returns it
    now_db = to_db(now)
    row = raw.execute(_SQ_TAKE, (amount, now_db, account_id, amount, now_db)).fetchone()
    if row is None:
        return None
    new_balance, next_expiry = row[0], from_db(row[1])
    drawn = raw.execute(_SQ_DRAW, (amount, account_id, now_db, amount)).fetchone()
    if drawn is None:
        # Crosses grants: the balance row is already taken, draw the Core way.
        draws, new_next_expiry = _draw(conn, account_id, amount, next_expiry, now)
    else:
        draws = [[drawn[0], amount]]
        new_next_expiry = next_expiry
        if drawn[1] == 0 and drawn[2] is not None and from_db(drawn[2]) == next_expiry:
            new_next_expiry = _next_expiry(conn, account_id)
    if new_next_expiry != next_expiry:
        _set_balance(conn, account_id, new_balance, new_next_expiry, now)
    cur = raw.execute(
        _SQ_INSERT,
        (
            account_id,
            action,
            feature,
            -amount,
            new_balance,
            reference_type,
            reference_id,
            key,
            reason,
            actor_id,
            json.dumps(draws, separators=(",", ":")),
            now_db,
        ),
    )
    return LedgerResult(cur.lastrowid, -amount, new_balance, True)
