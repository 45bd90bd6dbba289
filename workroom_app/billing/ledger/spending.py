"""Operations that spend credits: a generation's debit and a staff adjustment (either way).
Both draw through _spend: the engine's fast path when it applies, else the general path."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection
from sqlmodel import Session

from workroom_app.billing import balance_watch, clock
from workroom_app.billing.ledger.core import (
    LedgerResult,
    _announced,
    _conn,
    _draw,
    _existing,
    _lock,
    _set_balance,
    _sweep,
    _write_entry,
)
from workroom_app.billing.ledger.errors import InsufficientCredits, LedgerError
from workroom_app.billing.ledger.grants import grant
from workroom_app.billing.ledger.postgres_fast import _pg_fast_spend
from workroom_app.billing.ledger.sqlite_fast import _sqlite_fast_spend
from workroom_app.billing.ledger.validation import (
    DEBIT_ACTIONS,
    _check_action,
    _check_amount,
    _check_id,
    _check_key,
    _check_text,
)
from workroom_app.models import ActionType, GrantSource


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
        quick = _sqlite_fast_spend(
            conn,
            account_id,
            amount,
            key,
            action,
            now,
            (feature, reference_type, reference_id, reason, actor_id),
        )
        if quick is not None:
            return quick
        bal, next_expiry = _lock(conn, account_id)
    elif conn.dialect.name == "postgresql":
        pg = _pg_fast_spend(
            conn,
            account_id,
            amount,
            key,
            action,
            now,
            (feature, reference_type, reference_id, reason, actor_id),
        )
        if isinstance(pg, LedgerResult):
            return pg
        bal, next_expiry = pg
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
