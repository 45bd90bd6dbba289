"""The signed-in account's header (email, name, role, balance, plan) read in one query, and
the account's current plan.

Moved out of accounts.py, which re-exports every name here so ``accounts.header_of`` and
friends keep working. Plain Python (no Reflex), read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, ScalarSelect, Select, bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from workroom_app.billing import clock, staff_roles
from workroom_app.billing.login_sessions import _aware, token_hash
from workroom_app.models import (
    Account,
    AccountBalance,
    AuthSession,
    Subscription,
    SubscriptionStatus,
)

FREE_PLAN_KEY = "free"


@dataclass(frozen=True)
class Header:
    """What every page shows about the signed-in account (the header, the shell), and for how
    long the login it was read through stays live (None when read by account id)."""

    account_id: int
    email: str
    display_name: str
    role: str
    timezone: str
    email_confirmed: bool
    balance: int
    plan_key: str
    login_expires_at: datetime | None = None

    @property
    def is_staff(self) -> bool:
        return staff_roles.is_staff_role(self.role)


def _current_plan_of(account_id: Any) -> ScalarSelect[Any]:
    """current_plan_key as a (correlated, given a column) subquery (NULL: Free), for the
    one-query reads below."""
    return (
        core_select(Subscription.plan_key)
        .where(
            Subscription.account_id == account_id,
            Subscription.status.in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]),
        )
        .order_by(Subscription.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _header_query() -> Select[Any]:
    # The balance is the ledger's cached balance row (what ledger.balance reads).
    return (
        core_select(
            Account.id,
            Account.email,
            Account.display_name,
            Account.role,
            Account.timezone,
            Account.email_confirmed_at,
            Account.disabled_at,
            AccountBalance.balance,
            _current_plan_of(Account.id),
        )
        .select_from(Account)
        .outerjoin(AccountBalance, AccountBalance.account_id == Account.id)
    )


# Built once: every page load and every live push runs one of these, and building the statement
# (a join, a correlated subquery) cost more than running it on SQLite.
_HEADER_BY_LOGIN = (
    _header_query()
    .add_columns(AuthSession.expires_at, AuthSession.revoked_at, AuthSession.pending_until)
    .join(AuthSession, AuthSession.account_id == Account.id)
    .where(AuthSession.token_hash == bindparam("hashed"))
)
_HEADER_BY_ID = _header_query().where(Account.id == bindparam("account_id"))


def _header(row: Row[Any], login_expires_at: datetime | None = None) -> Header:
    account_id, email, name, role, tz, confirmed_at, _disabled, balance, plan_key = tuple(row)[:9]
    return Header(
        account_id=account_id,
        email=email,
        display_name=name,
        role=role,
        timezone=tz or "UTC",
        email_confirmed=confirmed_at is not None,
        balance=balance or 0,
        plan_key=plan_key or FREE_PLAN_KEY,
        login_expires_at=login_expires_at,
    )


def header_for_login(session: Session, token: object) -> Header | None:
    """The account a browser token is a live login of, with its header data (balance, plan,
    role), in ONE query: this is what every page load reads (state/session.py's guard). None
    for an unknown, pending, revoked or expired login or a disabled account, like
    lookup_session."""
    hashed = token_hash(token)
    if hashed is None:
        return None
    row = session.execute(_HEADER_BY_LOGIN, {"hashed": hashed}).first()
    if row is None:
        return None
    expires_at, revoked_at, pending_until = row[9:]
    if revoked_at is not None or pending_until is not None or row[6] is not None:
        return None
    if _aware(expires_at) <= clock.now():
        return None
    return _header(row, _aware(expires_at))


def header_of(session: Session, account_id: int) -> Header | None:
    """The header data of an account by id (the live push re-reads it after a change), one
    query; None when there is no such account."""
    row = session.execute(_HEADER_BY_ID, {"account_id": int(account_id)}).first()
    return None if row is None else _header(row)


def current_plan_key(session: Session, account_id: int) -> str:
    """The plan the account is on now: its live subscription's plan, else Free.

    A past-due subscription still counts: the plan stays until the retries run
    out (PRODUCT_RULES §5), and the renewal code ends it then.
    """
    row = session.exec(select(_current_plan_of(account_id))).first()
    return row or FREE_PLAN_KEY
