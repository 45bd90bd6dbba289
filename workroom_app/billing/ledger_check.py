"""Verify the ledger's invariants (see billing/ledger/__init__.py) from the stored rows.

`check_ledger` reads only; it returns one readable line per violation, an
empty list when everything holds. `workroom ledger check` prints them.

The sums and the balance_after chain are computed in SQL (aggregates and a
window function), so an account with a million rows is checked without
loading it into Python.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from workroom_app.models import Account, AccountBalance, ActionType, CreditGrant, LedgerEntry

_A = Account.__table__
_B = AccountBalance.__table__
_G = CreditGrant.__table__
_L = LedgerEntry.__table__

# Stop listing one kind of problem after this many rows: the first few say enough.
_MAX_PER_KIND = 20


def _account_ids(session: Session, email: str | None) -> list[int] | None:
    """None = every account."""
    if email is None:
        return None
    return list(
        session.connection()
        .execute(select(_A.c.id).where(func.lower(_A.c.email) == email.strip().lower()))
        .scalars()
    )


def _scope(column: ColumnElement[int], ids: list[int] | None) -> ColumnElement[bool]:
    return literal(True) if ids is None else column.in_(ids)


def count_accounts(session: Session, email: str | None = None) -> int:
    ids = _account_ids(session, email)
    return (
        session.connection()
        .execute(select(func.count()).select_from(_B).where(_scope(_B.c.account_id, ids)))
        .scalar_one()
    )


def check_ledger(session: Session, email: str | None = None) -> list[str]:
    """Every invariant violation, for all accounts or the one with `email`."""
    conn = session.connection()
    ids = _account_ids(session, email)
    if ids is not None and not ids:
        return [f"no account with email {email}"]
    problems: list[str] = []

    balances = {
        acct: (bal, next_expiry)
        for acct, bal, next_expiry in conn.execute(
            select(_B.c.account_id, _B.c.balance, _B.c.next_expiry_at).where(
                _scope(_B.c.account_id, ids)
            )
        )
    }
    ledger_sums: dict[int, int] = dict(
        conn.execute(
            select(_L.c.account_id, func.sum(_L.c.amount))
            .where(_scope(_L.c.account_id, ids))
            .group_by(_L.c.account_id)
        ).all()
    )
    grant_rows = conn.execute(
        select(
            _G.c.account_id,
            func.sum(_G.c.amount_left),
            func.min(case((_G.c.amount_left > 0, _G.c.expires_at), else_=None)),
        )
        .where(_scope(_G.c.account_id, ids))
        .group_by(_G.c.account_id)
    ).all()
    grant_sums = {acct: total for acct, total, _ in grant_rows}
    grant_next = {acct: _as_datetime(soonest) for acct, _, soonest in grant_rows}
    last_after: dict[int, int] = dict(
        conn.execute(
            select(_L.c.account_id, _L.c.balance_after).where(
                _L.c.id.in_(
                    select(func.max(_L.c.id))
                    .where(_scope(_L.c.account_id, ids))
                    .group_by(_L.c.account_id)
                )
            )
        ).all()
    )

    for acct in sorted(set(balances) | set(ledger_sums) | set(grant_sums)):
        if acct not in balances:
            problems.append(f"account {acct}: has ledger rows or grants but no balance row")
            continue
        cached, next_expiry = balances[acct]
        in_ledger = ledger_sums.get(acct, 0) or 0
        in_grants = grant_sums.get(acct, 0) or 0
        if cached < 0:
            problems.append(f"account {acct}: negative balance {cached}")
        if cached != in_ledger:
            problems.append(f"account {acct}: cached balance {cached} != sum of ledger {in_ledger}")
        if cached != in_grants:
            problems.append(
                f"account {acct}: cached balance {cached} != sum of grants left {in_grants}"
            )
        if acct in last_after and last_after[acct] != cached:
            problems.append(
                f"account {acct}: last balance_after {last_after[acct]} != cached balance {cached}"
            )
        soonest = grant_next.get(acct)
        if next_expiry != soonest:
            problems.append(
                f"account {acct}: next_expiry_at {next_expiry} != soonest grant expiry {soonest}"
            )

    # balance_after chain: each row = the running sum of amounts up to it, in id order.
    running = func.sum(_L.c.amount).over(partition_by=_L.c.account_id, order_by=_L.c.id)
    chain = (
        select(_L.c.id, _L.c.account_id, _L.c.balance_after, running.label("running"))
        .where(_scope(_L.c.account_id, ids))
        .subquery()
    )
    bad_chain = conn.execute(
        select(chain.c.id, chain.c.account_id, chain.c.balance_after, chain.c.running)
        .where(chain.c.balance_after != chain.c.running)
        .order_by(chain.c.id)
        .limit(_MAX_PER_KIND)
    ).all()
    for entry_id, acct, after, run in bad_chain:
        problems.append(
            f"account {acct}: ledger row {entry_id} balance_after {after} != running sum {run}"
        )
    for entry_id, acct, after in conn.execute(
        select(_L.c.id, _L.c.account_id, _L.c.balance_after)
        .where(_scope(_L.c.account_id, ids), _L.c.balance_after < 0)
        .order_by(_L.c.id)
        .limit(_MAX_PER_KIND)
    ):
        problems.append(f"account {acct}: ledger row {entry_id} has negative balance_after {after}")
    for entry_id, acct in conn.execute(
        select(_L.c.id, _L.c.account_id)
        .where(_scope(_L.c.account_id, ids), _L.c.amount == 0)
        .limit(_MAX_PER_KIND)
    ):
        problems.append(f"account {acct}: ledger row {entry_id} changes nothing (amount 0)")

    # Grants: never negative, never more than granted, nothing left once closed.
    for gid, acct, left, granted, closed in conn.execute(
        select(_G.c.id, _G.c.account_id, _G.c.amount_left, _G.c.amount_granted, _G.c.closed_at)
        .where(
            _scope(_G.c.account_id, ids),
            (_G.c.amount_left < 0)
            | (_G.c.amount_left > _G.c.amount_granted)
            | (_G.c.amount_granted <= 0)
            | (_G.c.closed_at.is_not(None) & (_G.c.amount_left != 0)),
        )
        .order_by(_G.c.id)
        .limit(_MAX_PER_KIND)
    ):
        problems.append(
            f"account {acct}: grant {gid} has {left} left of {granted}"
            + (" although it is closed" if closed is not None else "")
        )

    problems.extend(_check_refunds(conn, ids))
    return problems


def _check_refunds(conn: Connection, ids: list[int] | None) -> list[str]:
    problems: list[str] = []
    refunds = conn.execute(
        select(_L.c.id, _L.c.account_id, _L.c.amount, _L.c.reference_type, _L.c.reference_id)
        .where(_scope(_L.c.account_id, ids), _L.c.action_type == ActionType.REFUND.value)
        .order_by(_L.c.id)
    ).all()
    seen: dict[str, int] = {}
    debit_ids = [int(r.reference_id) for r in refunds if (r.reference_id or "").isdigit()]
    debits = (
        {
            row.id: row
            for row in conn.execute(
                select(_L.c.id, _L.c.account_id, _L.c.amount, _L.c.action_type).where(
                    _L.c.id.in_(debit_ids)
                )
            )
        }
        if debit_ids
        else {}
    )
    for entry_id, acct, amount, ref_type, ref_id in refunds:
        if ref_type != "debit" or not (ref_id or "").isdigit():
            problems.append(
                f"account {acct}: refund {entry_id} does not name the charge it refunds"
            )
            continue
        if ref_id in seen:
            problems.append(
                f"account {acct}: charge {ref_id} refunded twice (rows {seen[ref_id]} and {entry_id})"
            )
        seen.setdefault(ref_id, entry_id)
        charge = debits.get(int(ref_id))
        if charge is None or charge.account_id != acct:
            problems.append(f"account {acct}: refund {entry_id} names unknown charge {ref_id}")
        elif charge.action_type != ActionType.GENERATION.value or charge.amount >= 0:
            problems.append(
                f"account {acct}: refund {entry_id} refunds row {ref_id}, not a generation charge"
            )
        elif amount != -charge.amount:
            problems.append(
                f"account {acct}: refund {entry_id} gave back {amount}, the charge took {-charge.amount}"
            )
    return problems


def _as_datetime(value: object) -> datetime | None:
    """min() over a CASE loses the column type on SQLite: parse it back to aware UTC."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.utcoffset() is None else when.astimezone(UTC)
