"""Refunding a generation's debit: exactly once, back to the grants it came from while they
are live, the rest into a never-expiring refund grant (see the package docstring)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlmodel import Session

from workroom_app.billing import clock
from workroom_app.billing.ledger.core import (
    _G,
    _L,
    LedgerResult,
    _announce,
    _conn,
    _existing,
    _lock,
    _min_expiry,
    _new_grant,
    _set_balance,
    _write_entry,
)
from workroom_app.billing.ledger.errors import LedgerError
from workroom_app.billing.ledger.validation import (
    REFUNDABLE_ACTIONS,
    _check_id,
    _check_key,
    _check_text,
)
from workroom_app.models import ActionType, GrantSource


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
