"""Operations that add or take back whole grants: open an account, grant credits, expire due
grants, burn a subscription's grants, take back what an invoice bought, and read the balance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from workroom_app.billing import clock
from workroom_app.billing.ledger.core import (
    _B,
    _G,
    LedgerResult,
    _announce,
    _announced,
    _conn,
    _existing,
    _lock,
    _min_expiry,
    _new_grant,
    _next_expiry,
    _set_balance,
    _sweep,
    _write_entry,
)
from workroom_app.billing.ledger.errors import LedgerError
from workroom_app.billing.ledger.validation import (
    BURN_ACTIONS,
    GRANT_ACTIONS,
    _check_action,
    _check_amount,
    _check_expiry,
    _check_id,
    _check_key,
    _check_text,
)
from workroom_app.models import ActionType, GrantSource


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
