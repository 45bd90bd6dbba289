"""The credit ledger: the only code that writes balances, grants and ledger rows.

Every function takes the caller's session (an open ``write_session``
transaction) and never commits, so a caller can put its own rows (a generation
job, an invoice) in the same transaction as the credit change.

Each operation first locks the account's ``account_balance`` row (SELECT ... FOR
UPDATE on PostgreSQL; on SQLite ``write_session`` already holds the database
write lock from BEGIN IMMEDIATE), then looks up its idempotency key. A key that
was already used returns the first result with ``created=False`` and changes
nothing. Because every writer of an account goes through that one row lock,
the checks below (enough credits, refund not yet given) cannot race.

Invariants kept after every operation, and verified by ``ledger_check``:
- ``account_balance.balance`` == sum of the account's ledger amounts == sum of
  its grants' ``amount_left``; no balance, grant or ``balance_after`` is negative;
- each ledger row's ``balance_after`` is the previous row's plus its amount;
- ``account_balance.next_expiry_at`` is the soonest ``expires_at`` among grants
  with credits left (None when none expire), so a debit can tell from the row it
  has just locked whether some grant is past its expiry and must be expired
  (an Expiry row) before anything is spent. Expired credits are never spendable.

Spending (debits and negative staff adjustments) draws from the grant that
expires soonest; grants that never expire go last; ties go to the oldest grant.
The debit row records what it drew as JSON ``draws`` = ``[[grant_id, amount], ...]``.

Refunds (decision): a refund gives back exactly the debited amount, once per
debit. Each part goes back to the grant it was drawn from if that grant is
still live (not burned, not past its expiry); the parts whose grant has since
expired or been burned go into one new grant that never expires (source
"refund"), so a refund never hands back credits that vanish at once and never
resurrects a burned plan's bucket. A second refund of the same debit, under
any idempotency key, returns the first refund and changes nothing.

Expiry rows get the key ``expiry:grant:<smallest grant id expired>``: a grant
expires only once, so the key is unique and a repeated sweep is a no-op.

The debit hot path is short, measured and kept so (docs/benchmarks.md,
"Ledger"). PostgreSQL: one round trip (a psycopg pipeline) of two statements,
the balance-row lock, then one statement of data-modifying CTEs that checks
the key and the balance, takes the credits, draws from the first grant and
inserts the ledger row. SQLite: four statements on the transaction's own
sqlite3 connection (the transaction already holds the write lock, so the key
lookup may come first), then the balance check-and-take (one conditional
UPDATE ... RETURNING), the draw, the ledger row. Both fall back to the general
path (SQLAlchemy Core) for anything unusual: a replayed key, a short balance, a
due expiry, a debit that crosses grants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session

from workroom_app import notifications
from workroom_app.billing import balance_watch, clock
from workroom_app.models import AccountBalance, ActionType, CreditGrant, GrantSource, LedgerEntry

__all__ = [
    "LedgerError",
    "InsufficientCredits",
    "LedgerResult",
    "open_account",
    "grant",
    "debit",
    "refund",
    "expire_due",
    "burn_subscription_grants",
    "staff_adjust",
    "remove_from_grants",
    "balance",
    "GRANT_ACTIONS",
    "DEBIT_ACTIONS",
    "BURN_ACTIONS",
]

_B = AccountBalance.__table__
_G = CreditGrant.__table__
_L = LedgerEntry.__table__

MAX_KEY_LENGTH = 200
# Far more than any real grant or debit; keeps sums well inside 64-bit integers.
MAX_AMOUNT = 10**12

# Which action types each operation may write (PRODUCT_RULES §2).
GRANT_ACTIONS = frozenset(
    {
        ActionType.TRIAL_GRANT,
        ActionType.SUBSCRIPTION_CREDITS,
        ActionType.MONTHLY_CREDITS,
        ActionType.PLAN_CHANGE,
        ActionType.STAFF_ADJUSTMENT,
        ActionType.CREDIT_PACK,
    }
)
DEBIT_ACTIONS = frozenset(
    {ActionType.GENERATION, ActionType.PLAN_CHANGE, ActionType.STAFF_ADJUSTMENT}
)
BURN_ACTIONS = frozenset({ActionType.PLAN_CHANGE, ActionType.EXPIRY})
# Only a generation's debit can be refunded (PRODUCT_RULES §2, "Refund").
REFUNDABLE_ACTIONS = frozenset({ActionType.GENERATION})


class LedgerError(Exception):
    """A ledger operation was refused; the message can be shown to a user."""


class InsufficientCredits(LedgerError):
    def __init__(self, needed: int, available: int, message: str | None = None) -> None:
        self.needed = needed
        self.available = available
        super().__init__(
            message
            or f"Not enough credits: this needs {needed} credits and the balance is {available}."
        )


@dataclass(frozen=True)
class LedgerResult:
    entry_id: int | None
    amount: int
    balance_after: int
    created: bool


# ----------------------------------------------------------------- validation


def _check_amount(amount: object, what: str = "amount") -> int:
    # bool is an int subclass: True must not silently mean one credit.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LedgerError(f"The {what} must be a whole number of credits.")
    if amount <= 0:
        raise LedgerError(f"The {what} must be more than zero credits.")
    if amount > MAX_AMOUNT:
        raise LedgerError(f"The {what} is too large.")
    return amount


def _check_id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LedgerError(f"The {what} is not valid.")
    return value


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise LedgerError("An idempotency key is required.")
    if len(key) > MAX_KEY_LENGTH:
        raise LedgerError(f"The idempotency key is longer than {MAX_KEY_LENGTH} characters.")
    return key


def _check_text(value: object, what: str, max_length: int, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise LedgerError(f"The {what} is required." if required else f"The {what} must be text.")
    if len(value) > max_length:
        raise LedgerError(f"The {what} is longer than {max_length} characters.")
    return value


def _check_action(action_type: object, allowed: frozenset[ActionType], operation: str) -> str:
    try:
        action = ActionType(action_type)
    except ValueError:
        raise LedgerError(f"Unknown action type {action_type!r}.") from None
    if action not in allowed:
        raise LedgerError(f"A {operation} cannot be recorded as {action.value!r}.")
    return action.value


def _check_expiry(expires_at: object, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime) or expires_at.utcoffset() is None:
        raise LedgerError("The expiry must be a date and time with a time zone.")
    if expires_at <= now:
        raise LedgerError("The expiry must be in the future.")
    return expires_at


# -------------------------------------------------------------------- helpers

_lock_stmt = (
    select(_B.c.balance, _B.c.next_expiry_at)
    .where(_B.c.account_id == bindparam("acct"))
    .with_for_update()
)
_key_stmt = select(
    _L.c.id, _L.c.account_id, _L.c.amount, _L.c.balance_after, _L.c.action_type, _L.c.reference_id
).where(_L.c.idempotency_key == bindparam("key"))
_insert_entry_stmt = insert(_L).returning(_L.c.id)
_update_balance_stmt = (
    update(_B)
    .where(_B.c.account_id == bindparam("acct"))
    .values(
        balance=bindparam("new_balance"),
        next_expiry_at=bindparam("new_next_expiry"),
        updated_at=bindparam("now"),
    )
)
# Spending order: soonest expiry first, never-expiring last, oldest first on ties.
_draw_order = (_G.c.expires_at.is_(None), _G.c.expires_at, _G.c.id)
_first_grant_id = (
    select(_G.c.id)
    .where(
        _G.c.account_id == bindparam("acct"),
        _G.c.amount_left > 0,
        or_(_G.c.expires_at.is_(None), _G.c.expires_at > bindparam("now")),
    )
    .order_by(*_draw_order)
    .limit(1)
    .scalar_subquery()
)
# The common case: the first grant in spending order covers the whole amount,
# so selecting and drawing it is one statement.
_draw_one_stmt = (
    update(_G)
    .where(_G.c.id == _first_grant_id, _G.c.amount_left >= bindparam("amount"))
    .values(amount_left=_G.c.amount_left - bindparam("amount"))
    .returning(_G.c.id, _G.c.amount_left, _G.c.expires_at)
)
_live_grants_stmt = (
    select(_G.c.id, _G.c.amount_left, _G.c.expires_at)
    .where(
        _G.c.account_id == bindparam("acct"),
        _G.c.amount_left > 0,
        or_(_G.c.expires_at.is_(None), _G.c.expires_at > bindparam("now")),
    )
    .order_by(*_draw_order)
)
_set_grant_left_stmt = (
    update(_G).where(_G.c.id == bindparam("grant_id")).values(amount_left=bindparam("left"))
)
_next_expiry_stmt = select(func.min(_G.c.expires_at)).where(
    _G.c.account_id == bindparam("acct"),
    _G.c.amount_left > 0,
    _G.c.expires_at.is_not(None),
)


def _conn(session: Session | Connection) -> Connection:
    # A bare Connection (already in a transaction) is accepted too: it skips the
    # ORM session's bookkeeping on paths that need none (see benchmarks).
    return session if isinstance(session, Connection) else session.connection()


def _lock(conn: Connection, account_id: int) -> tuple[int, datetime | None]:
    row = conn.execute(_lock_stmt, {"acct": account_id}).first()
    if row is None:
        raise LedgerError(f"Account {account_id} has no credit balance yet.")
    return row[0], row[1]


def _existing(
    conn: Connection,
    key: str,
    account_id: int | None,
    amount: int | None,
    action_type: str | None,
    reference_id: str | None = None,
) -> LedgerResult | None:
    """The first result for `key`, or None. A key reused for a different operation
    is a caller bug: refuse it rather than report a result that never happened."""
    row = conn.execute(_key_stmt, {"key": key}).first()
    if row is None:
        return None
    entry_id, row_account, row_amount, row_balance_after, row_action, row_reference = row
    if (
        (reference_id is not None and row_reference != reference_id)
        or (account_id is not None and row_account != account_id)
        or (amount is not None and row_amount != amount)
        or (action_type is not None and row_action != action_type)
    ):
        raise LedgerError("This idempotency key was already used for a different credit change.")
    return LedgerResult(entry_id, row_amount, row_balance_after, False)


def _write_entry(
    conn: Connection,
    *,
    account_id: int,
    action_type: str,
    amount: int,
    balance_after: int,
    idempotency_key: str,
    now: datetime,
    feature: str | None = None,
    reference_type: str | None = None,
    reference_id: str | None = None,
    reason: str | None = None,
    actor_id: int | None = None,
    draws: list[list[int]] | None = None,
) -> int:
    return conn.execute(
        _insert_entry_stmt,
        {
            "account_id": account_id,
            "action_type": action_type,
            "feature": feature,
            "amount": amount,
            "balance_after": balance_after,
            "reference_type": reference_type,
            "reference_id": reference_id,
            "idempotency_key": idempotency_key,
            "reason": reason,
            "actor_id": actor_id,
            "draws": json.dumps(draws, separators=(",", ":")) if draws is not None else None,
            "created_at": now,
        },
    ).scalar_one()


def _set_balance(
    conn: Connection, account_id: int, new_balance: int, next_expiry: datetime | None, now: datetime
) -> None:
    conn.execute(
        _update_balance_stmt,
        {
            "acct": account_id,
            "new_balance": new_balance,
            "new_next_expiry": next_expiry,
            "now": now,
        },
    )


def _next_expiry(conn: Connection, account_id: int) -> datetime | None:
    return conn.execute(_next_expiry_stmt, {"acct": account_id}).scalar()


def _sweep(
    conn: Connection, account_id: int, balance_now: int, now: datetime
) -> tuple[LedgerResult | None, int, datetime | None]:
    """Expire the locked account's grants whose expiry has passed (one Expiry row).
    Returns (result or None, new balance, new next_expiry_at)."""
    due = conn.execute(
        select(_G.c.id, _G.c.amount_left)
        .where(
            _G.c.account_id == account_id,
            _G.c.amount_left > 0,
            _G.c.expires_at.is_not(None),
            _G.c.expires_at <= now,
        )
        .order_by(_G.c.id)
    ).all()
    if not due:
        # next_expiry_at was stale (never later than the truth): refresh it.
        next_expiry = _next_expiry(conn, account_id)
        _set_balance(conn, account_id, balance_now, next_expiry, now)
        return None, balance_now, next_expiry
    total = sum(left for _, left in due)
    conn.execute(
        update(_G).where(_G.c.id.in_([gid for gid, _ in due])).values(amount_left=0, closed_at=now)
    )
    new_balance = balance_now - total
    key = f"expiry:grant:{due[0][0]}"
    entry_id = _write_entry(
        conn,
        account_id=account_id,
        action_type=ActionType.EXPIRY.value,
        amount=-total,
        balance_after=new_balance,
        idempotency_key=key,
        now=now,
        reference_type="grant",
        reference_id=str(due[0][0]),
        draws=[[gid, left] for gid, left in due],
    )
    next_expiry = _next_expiry(conn, account_id)
    _set_balance(conn, account_id, new_balance, next_expiry, now)
    return LedgerResult(entry_id, -total, new_balance, True), new_balance, next_expiry


def _draw(
    conn: Connection,
    account_id: int,
    amount: int,
    next_expiry: datetime | None,
    now: datetime,
) -> tuple[list[list[int]], datetime | None]:
    """Take `amount` from the live grants in spending order (the caller has checked
    the balance covers it). Returns the draws and the new next_expiry_at."""
    params = {"acct": account_id, "amount": amount, "now": now}
    row = conn.execute(_draw_one_stmt, params).first()
    if row is not None:
        grant_id, left, expires_at = row
        draws = [[grant_id, amount]]
        if left == 0 and expires_at is not None and expires_at == next_expiry:
            # The soonest-expiring bucket is now empty: find the next one.
            next_expiry = _next_expiry(conn, account_id)
        return draws, next_expiry
    draws = []
    updates = []
    remaining = amount
    drained_soonest = False
    for grant_id, left, expires_at in conn.execute(_live_grants_stmt, params):
        take = min(left, remaining)
        draws.append([grant_id, take])
        updates.append({"grant_id": grant_id, "left": left - take})
        if take == left and expires_at is not None and expires_at == next_expiry:
            drained_soonest = True
        remaining -= take
        if remaining == 0:
            break
    if remaining:
        # The cached balance said it was there: the grants disagree with it.
        raise LedgerError("The credit balance is inconsistent; nothing was charged.")
    conn.execute(_set_grant_left_stmt, updates)
    if drained_soonest:
        next_expiry = _next_expiry(conn, account_id)
    return draws, next_expiry


def _new_grant(
    conn: Connection,
    *,
    account_id: int,
    source: str,
    amount: int,
    expires_at: datetime | None,
    subscription_id: int | None,
    now: datetime,
) -> int:
    return conn.execute(
        insert(_G).returning(_G.c.id),
        {
            "account_id": account_id,
            "source": source,
            "amount_granted": amount,
            "amount_left": amount,
            "expires_at": expires_at,
            "subscription_id": subscription_id,
            "created_at": now,
            "closed_at": None,
        },
    ).scalar_one()


def _min_expiry(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# ------------------------------------------------- SQLite debit fast path
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


def _sq_datetime_processors(dialect) -> tuple:
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


# --------------------------------------------- PostgreSQL debit fast path
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


# ----------------------------------------------------------------- operations


def _announce(session: Session | Connection, account_id: int) -> None:
    """Every new ledger row changes a balance: tell the open tabs when the transaction commits."""
    notifications.announce(session, account_id, notifications.BALANCE)


def _announced(
    session: Session | Connection, account_id: int, result: LedgerResult
) -> LedgerResult:
    if result.created:
        _announce(session, account_id)
    return result


def open_account(session: Session, account_id: int) -> None:
    """Create the account's balance row (balance 0). Opening twice changes nothing."""
    _check_id(account_id, "account")
    conn = _conn(session)
    insert_fn = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert_fn(_B)
        .values(account_id=account_id, balance=0, next_expiry_at=None, updated_at=clock.now())
        .on_conflict_do_nothing(index_elements=[_B.c.account_id])
    )


def grant(
    session: Session,
    account_id: int,
    amount: int,
    *,
    action_type: str,
    source: str,
    idempotency_key: str,
    expires_at: datetime | None = None,
    subscription_id: int | None = None,
    feature: str | None = None,
    reference_type: str | None = None,
    reference_id: str | None = None,
    reason: str | None = None,
    actor_id: int | None = None,
) -> LedgerResult:
    """Add a grant of `amount` credits (a new bucket) and its ledger row; opens
    the account's balance row first if it has none."""
    _check_id(account_id, "account")
    _check_amount(amount)
    action = _check_action(action_type, GRANT_ACTIONS, "grant")
    try:
        source = GrantSource(source).value
    except ValueError:
        raise LedgerError(f"Unknown grant source {source!r}.") from None
    key = _check_key(idempotency_key)
    if subscription_id is not None:
        _check_id(subscription_id, "subscription")
    if actor_id is not None:
        _check_id(actor_id, "staff member")
    feature = _check_text(feature, "feature", 32, required=False)
    reference_type = _check_text(reference_type, "reference type", 32, required=False)
    reference_id = _check_text(reference_id, "reference", 64, required=False)
    reason = _check_text(reason, "reason", 2000, required=action == ActionType.STAFF_ADJUSTMENT)
    if action == ActionType.STAFF_ADJUSTMENT and actor_id is None:
        raise LedgerError("A staff adjustment needs the staff member who made it.")
    now = clock.now()
    expires_at = _check_expiry(expires_at, now)

    conn = _conn(session)
    open_account(session, account_id)
    bal, next_expiry = _lock(conn, account_id)
    existing = _existing(conn, key, account_id, amount, action)
    if existing is not None:
        return existing
    grant_id = _new_grant(
        conn,
        account_id=account_id,
        source=source,
        amount=amount,
        expires_at=expires_at,
        subscription_id=subscription_id,
        now=now,
    )
    new_balance = bal + amount
    entry_id = _write_entry(
        conn,
        account_id=account_id,
        action_type=action,
        amount=amount,
        balance_after=new_balance,
        idempotency_key=key,
        now=now,
        feature=feature,
        reference_type=reference_type,
        reference_id=reference_id,
        reason=reason,
        actor_id=actor_id,
        draws=[[grant_id, amount]],
    )
    _set_balance(conn, account_id, new_balance, _min_expiry(next_expiry, expires_at), now)
    _announce(session, account_id)
    return LedgerResult(entry_id, amount, new_balance, True)


def _spend(
    conn: Connection,
    account_id: int,
    amount: int,
    *,
    key: str,
    action: str,
    now: datetime,
    feature: str | None,
    reference_type: str | None,
    reference_id: str | None,
    reason: str | None = None,
    actor_id: int | None = None,
    insufficient_message: str | None = None,
) -> LedgerResult:
    if conn.dialect.name == "sqlite":
        # BEGIN IMMEDIATE already holds the database write lock, so nothing can
        # change between statements: the fast path looks the key up first, then
        # checks and takes the credits in one conditional UPDATE.
        fast = _sqlite_fast_spend(
            conn,
            account_id,
            amount,
            key,
            action,
            now,
            (feature, reference_type, reference_id, reason, actor_id),
        )
        if fast is not None:
            return fast
        bal, next_expiry = _lock(conn, account_id)
    elif conn.dialect.name == "postgresql":
        fast = _pg_fast_spend(
            conn,
            account_id,
            amount,
            key,
            action,
            now,
            (feature, reference_type, reference_id, reason, actor_id),
        )
        if isinstance(fast, LedgerResult):
            return fast
        bal, next_expiry = fast
    else:
        bal, next_expiry = _lock(conn, account_id)
    existing = _existing(conn, key, account_id, -amount, action)
    if existing is not None:
        return existing
    if next_expiry is not None and next_expiry <= now:
        _, bal, next_expiry = _sweep(conn, account_id, bal, now)
    if bal < amount:
        raise InsufficientCredits(
            amount,
            bal,
            insufficient_message.format(needed=amount, available=bal)
            if insufficient_message
            else None,
        )
    draws, next_expiry = _draw(conn, account_id, amount, next_expiry, now)
    new_balance = bal - amount
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
    _set_balance(conn, account_id, new_balance, next_expiry, now)
    return LedgerResult(entry_id, -amount, new_balance, True)


def debit(
    session: Session,
    account_id: int,
    amount: int,
    *,
    feature: str,
    idempotency_key: str,
    reference_type: str | None = None,
    reference_id: str | None = None,
    action_type: str = ActionType.GENERATION,
) -> LedgerResult:
    """Spend `amount` credits, soonest-expiring grants first. Raises
    InsufficientCredits (and changes nothing) when the balance does not cover it."""
    _check_id(account_id, "account")
    _check_amount(amount)
    feature = _check_text(feature, "feature", 32, required=True)
    key = _check_key(idempotency_key)
    action = _check_action(action_type, DEBIT_ACTIONS, "debit")
    reference_type = _check_text(reference_type, "reference type", 32, required=False)
    reference_id = _check_text(reference_id, "reference", 64, required=False)
    result = _spend(
        _conn(session),
        account_id,
        amount,
        key=key,
        action=action,
        now=clock.now(),
        feature=feature,
        reference_type=reference_type,
        reference_id=reference_id,
    )
    if result.created:
        # Alerts and auto top-up look at it after the commit (no SQL here).
        balance_watch.note(session, account_id, result.entry_id, amount, result.balance_after)
    return _announced(session, account_id, result)


def refund(
    session: Session, debit_entry_id: int, *, idempotency_key: str, reason: str | None = None
) -> LedgerResult:
    """Give back exactly what a generation's debit took, once (see the module
    docstring for where the credits go)."""
    _check_id(debit_entry_id, "charge to refund")
    key = _check_key(idempotency_key)
    # Why, when it is not a failure: e.g. the broken-result report it answers.
    reason = _check_text(reason, "reason", 2000, required=False)
    conn = _conn(session)
    debit_row = conn.execute(
        select(_L.c.account_id, _L.c.action_type, _L.c.amount, _L.c.feature, _L.c.draws).where(
            _L.c.id == debit_entry_id
        )
    ).first()
    if debit_row is None:
        raise LedgerError("There is no such charge to refund.")
    account_id, action, debit_amount, feature, draws_json = debit_row
    if action not in REFUNDABLE_ACTIONS or debit_amount >= 0:
        raise LedgerError("Only a generation's charge can be refunded.")
    amount = -debit_amount
    now = clock.now()

    bal, next_expiry = _lock(conn, account_id)
    existing = _existing(
        conn, key, account_id, amount, ActionType.REFUND.value, str(debit_entry_id)
    )
    if existing is not None:
        return existing
    # Exactly once per debit, whatever key the second request carries.
    earlier = conn.execute(
        select(_L.c.id, _L.c.amount, _L.c.balance_after).where(
            _L.c.account_id == account_id,
            _L.c.action_type == ActionType.REFUND.value,
            _L.c.reference_type == "debit",
            _L.c.reference_id == str(debit_entry_id),
        )
    ).first()
    if earlier is not None:
        return LedgerResult(earlier[0], earlier[1], earlier[2], False)

    draws = json.loads(draws_json) if draws_json else []
    if sum(part for _, part in draws) != amount:
        # A debit row always records its draws; without them the whole
        # amount goes to a refund grant.
        draws = []
    grant_ids = [gid for gid, _ in draws]
    live: dict[int, datetime | None] = {}
    if grant_ids:
        for gid, expires_at in conn.execute(
            select(_G.c.id, _G.c.expires_at).where(
                _G.c.id.in_(grant_ids),
                _G.c.account_id == account_id,
                _G.c.closed_at.is_(None),
                or_(_G.c.expires_at.is_(None), _G.c.expires_at > now),
            )
        ):
            live[gid] = expires_at
    restored: list[list[int]] = []
    leftover = amount if not draws else 0
    for gid, part in draws:
        if gid in live:
            restored.append([gid, part])
        else:
            leftover += part
    if restored:
        conn.execute(
            update(_G)
            .where(_G.c.id == bindparam("grant_id"))
            .values(amount_left=_G.c.amount_left + bindparam("part")),
            [{"grant_id": gid, "part": part} for gid, part in restored],
        )
        for gid, _ in restored:
            next_expiry = _min_expiry(next_expiry, live[gid])
    if leftover:
        gid = _new_grant(
            conn,
            account_id=account_id,
            source=GrantSource.REFUND.value,
            amount=leftover,
            expires_at=None,
            subscription_id=None,
            now=now,
        )
        restored.append([gid, leftover])
    new_balance = bal + amount
    entry_id = _write_entry(
        conn,
        account_id=account_id,
        action_type=ActionType.REFUND.value,
        amount=amount,
        balance_after=new_balance,
        idempotency_key=key,
        now=now,
        feature=feature,
        reference_type="debit",
        reference_id=str(debit_entry_id),
        reason=reason,
        draws=restored,
    )
    _set_balance(conn, account_id, new_balance, next_expiry, now)
    _announce(session, account_id)
    return LedgerResult(entry_id, amount, new_balance, True)


def expire_due(
    session: Session, *, now: datetime | None = None, account_id: int | None = None
) -> list[LedgerResult]:
    """Expire every grant past its expiry (one Expiry row per account), for one
    account or all. Running it again changes nothing."""
    if now is None:
        now = clock.now()
    elif not isinstance(now, datetime) or now.utcoffset() is None:
        raise LedgerError("The expiry time must be a date and time with a time zone.")
    conn = _conn(session)
    if account_id is not None:
        accounts = [_check_id(account_id, "account")]
    else:
        # Lock in id order so two sweeps never deadlock each other.
        accounts = list(
            conn.execute(
                select(_B.c.account_id)
                .where(_B.c.next_expiry_at.is_not(None), _B.c.next_expiry_at <= now)
                .order_by(_B.c.account_id)
            ).scalars()
        )
    results = []
    for acct in accounts:
        bal, next_expiry = _lock(conn, acct)
        if next_expiry is None or next_expiry > now:
            continue
        result, _, _ = _sweep(conn, acct, bal, now)
        if result is not None:
            results.append(result)
            _announce(session, acct)
    return results


def burn_subscription_grants(
    session: Session,
    account_id: int,
    subscription_id: int,
    *,
    action_type: str,
    idempotency_key: str,
    reference_type: str | None = None,
    reference_id: str | None = None,
) -> LedgerResult | None:
    """Zero every grant of that subscription that still has credits (one row,
    Plan change on a downgrade, Expiry at the end of a cancelled plan).
    Returns None, writing nothing, when there is nothing left to burn."""
    _check_id(account_id, "account")
    _check_id(subscription_id, "subscription")
    action = _check_action(action_type, BURN_ACTIONS, "burn")
    key = _check_key(idempotency_key)
    reference_type = _check_text(reference_type, "reference type", 32, required=False)
    reference_id = _check_text(reference_id, "reference", 64, required=False)
    now = clock.now()
    conn = _conn(session)
    bal, _ = _lock(conn, account_id)
    existing = _existing(conn, key, account_id, None, action)
    if existing is not None:
        return existing
    burned = conn.execute(
        select(_G.c.id, _G.c.amount_left)
        .where(
            _G.c.account_id == account_id,
            _G.c.subscription_id == subscription_id,
            _G.c.amount_left > 0,
        )
        .order_by(_G.c.id)
    ).all()
    if not burned:
        return None
    total = sum(left for _, left in burned)
    conn.execute(
        update(_G)
        .where(_G.c.id.in_([gid for gid, _ in burned]))
        .values(amount_left=0, closed_at=now)
    )
    new_balance = bal - total
    entry_id = _write_entry(
        conn,
        account_id=account_id,
        action_type=action,
        amount=-total,
        balance_after=new_balance,
        idempotency_key=key,
        now=now,
        reference_type=reference_type or "subscription",
        reference_id=reference_id or str(subscription_id),
        draws=[[gid, left] for gid, left in burned],
    )
    _set_balance(conn, account_id, new_balance, _next_expiry(conn, account_id), now)
    _announce(session, account_id)
    return LedgerResult(entry_id, -total, new_balance, True)


def staff_adjust(
    session: Session,
    account_id: int,
    amount: int,
    *,
    reason: str,
    actor_id: int,
    idempotency_key: str,
) -> LedgerResult:
    """A staff correction: positive adds a never-expiring grant, negative takes
    credits like a debit would. Needs a written reason and the staff member;
    never takes the balance below zero."""
    _check_id(account_id, "account")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LedgerError("The adjustment must be a whole number of credits.")
    if amount == 0:
        raise LedgerError("The adjustment must add or remove at least one credit.")
    _check_amount(abs(amount), "adjustment")
    reason = _check_text(reason, "reason", 2000, required=True)
    if actor_id is None:
        raise LedgerError("A staff adjustment needs the staff member who made it.")
    _check_id(actor_id, "staff member")
    key = _check_key(idempotency_key)
    if amount > 0:
        return grant(
            session,
            account_id,
            amount,
            action_type=ActionType.STAFF_ADJUSTMENT,
            source=GrantSource.STAFF,
            idempotency_key=key,
            reference_type="staff",
            reference_id=str(actor_id),
            reason=reason,
            actor_id=actor_id,
        )
    return _announced(
        session,
        account_id,
        _spend(
            _conn(session),
            account_id,
            -amount,
            key=key,
            action=ActionType.STAFF_ADJUSTMENT.value,
            now=clock.now(),
            feature=None,
            reference_type="staff",
            reference_id=str(actor_id),
            reason=reason,
            actor_id=actor_id,
            insufficient_message=(
                "Cannot remove {needed} credits: the balance is only {available}, "
                "and a balance never goes below zero."
            ),
        ),
    )


def remove_from_grants(
    session: Session,
    account_id: int,
    grant_ids: list[int],
    amount: int,
    *,
    reason: str,
    idempotency_key: str,
    actor_id: int | None = None,
    reference_type: str | None = None,
    reference_id: str | None = None,
) -> LedgerResult | None:
    """Take up to `amount` credits back from these grants only (what is left
    of them; soonest expiry first), as one Staff adjustment row: an invoice
    refunded by staff or in Stripe takes back the unspent credits it bought
    (billing/invoice_refunds.py). Never more than the grants hold, so never
    below zero. Returns None, writing nothing, when they hold nothing."""
    _check_id(account_id, "account")
    _check_amount(amount)
    ids = [_check_id(gid, "grant") for gid in grant_ids]
    reason = _check_text(reason, "reason", 2000, required=True)
    if actor_id is not None:
        _check_id(actor_id, "staff member")
    key = _check_key(idempotency_key)
    reference_type = _check_text(reference_type, "reference type", 32, required=False)
    reference_id = _check_text(reference_id, "reference", 64, required=False)
    now = clock.now()
    conn = _conn(session)
    bal, next_expiry = _lock(conn, account_id)
    existing = _existing(conn, key, account_id, None, ActionType.STAFF_ADJUSTMENT.value)
    if existing is not None:
        return existing
    if not ids:
        return None
    if next_expiry is not None and next_expiry <= now:
        # Credits past their expiry are the Expiry row's, not the refund's.
        _, bal, next_expiry = _sweep(conn, account_id, bal, now)
    rows = conn.execute(
        select(_G.c.id, _G.c.amount_left)
        .where(
            _G.c.id.in_(ids),
            _G.c.account_id == account_id,
            _G.c.amount_left > 0,
            _G.c.closed_at.is_(None),
            or_(_G.c.expires_at.is_(None), _G.c.expires_at > now),
        )
        .order_by(_G.c.expires_at.is_(None), _G.c.expires_at, _G.c.id)
    ).all()
    taken: list[list[int]] = []
    wanted = amount
    for gid, left in rows:
        if wanted <= 0:
            break
        part = min(left, wanted)
        taken.append([gid, part])
        wanted -= part
    total = sum(part for _, part in taken)
    if total <= 0:
        return None
    conn.execute(
        update(_G)
        .where(_G.c.id == bindparam("grant_id"))
        .values(amount_left=_G.c.amount_left - bindparam("part")),
        [{"grant_id": gid, "part": part} for gid, part in taken],
    )
    new_balance = bal - total
    entry_id = _write_entry(
        conn,
        account_id=account_id,
        action_type=ActionType.STAFF_ADJUSTMENT.value,
        amount=-total,
        balance_after=new_balance,
        idempotency_key=key,
        now=now,
        reference_type=reference_type,
        reference_id=reference_id,
        reason=reason,
        actor_id=actor_id,
        draws=taken,
    )
    _set_balance(conn, account_id, new_balance, _next_expiry(conn, account_id), now)
    return _announced(session, account_id, LedgerResult(entry_id, -total, new_balance, True))


def balance(session: Session, account_id: int) -> int:
    """The cached balance (0 for an account that has none yet)."""
    value = (
        _conn(session)
        .execute(
            select(_B.c.balance).where(_B.c.account_id == bindparam("acct")),
            {"acct": account_id},
        )
        .scalar()
    )
    return value or 0


# Reads of live grants (past-expiry grants excluded: they are gone whatever happens).
# They go through the ORM session so pending changes are flushed first.


def subscription_credits_left(session: Session, subscription_id: int, now: datetime) -> int:
    """Credits left in the subscription's live grants (what a downgrade burns)."""
    return _live_grants_total(session, CreditGrant.subscription_id == subscription_id, now)


def spendable_balance(session: Session, account_id: int, now: datetime) -> int:
    """The balance that can be spent now (grants past expiry not counted)."""
    return _live_grants_total(session, CreditGrant.account_id == account_id, now)


def _live_grants_total(session: Session, owner: object, now: datetime) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(CreditGrant.amount_left), 0)).where(
            owner,
            CreditGrant.amount_left > 0,
            or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > now),
        )
    ).scalar_one()
    return int(total)


# The after-commit checks on debits (low-balance alerts, auto top-up) register
# themselves with balance_watch when imported.
from workroom_app.billing import alerts as _alerts  # noqa: E402,F401
