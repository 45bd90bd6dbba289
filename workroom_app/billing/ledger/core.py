"""The ledger's general path, shared by every operation: the balance-row lock, the
idempotency-key lookup, drawing from grants in spending order, the expiry sweep, writing a
ledger row and the cached balance, and the after-commit announcement.

Names starting with _ are private to the ledger package (its operations and fast paths use
them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from workroom_app import notifications
from workroom_app.billing.ledger.errors import LedgerError
from workroom_app.models import AccountBalance, ActionType, CreditGrant, LedgerEntry

_B = AccountBalance.__table__
_G = CreditGrant.__table__
_L = LedgerEntry.__table__


@dataclass(frozen=True)
class LedgerResult:
    entry_id: int | None
    amount: int
    balance_after: int
    created: bool


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
    entry_id: int = conn.execute(
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
    return entry_id


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
    grant_id: int = conn.execute(
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
    return grant_id


def _min_expiry(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _announce(session: Session | Connection, account_id: int) -> None:
    """Every new ledger row changes a balance: tell the open tabs when the transaction commits."""
    notifications.announce(session, account_id, notifications.BALANCE)


def _announced(
    session: Session | Connection, account_id: int, result: LedgerResult
) -> LedgerResult:
    if result.created:
        _announce(session, account_id)
    return result
