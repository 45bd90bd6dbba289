"""Log-in sessions: server-side sessions kept by token hash, the one-time log-in ticket, the
checks of a live login, and log-out (one login or all of an account's).

Moved out of accounts.py, which re-exports every name here so ``accounts.create_login`` and
friends keep working. Plain Python (no Reflex); none of these commits.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import clock
from workroom_app.models import Account, AuthSession
from workroom_app.settings import get_settings


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_login(session: Session, account_id: int, *, days: int | None = None) -> str:
    """Start a server-side session; returns the token the browser keeps.

    Only the token's SHA-256 is stored, so a database leak does not hand out
    live logins.
    """
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = timedelta(days=days if days is not None else get_settings().session_days)
    session.add(
        AuthSession(
            token_hash=_token_hash(token),
            account_id=account_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return token


# A log-in hands the page a one-time ticket, which the page trades for the HttpOnly cookie
# (http/auth_routes.py) right away; an unused ticket is worthless after this long.
LOGIN_TICKET_SECONDS = 60


def create_login_ticket(session: Session, account_id: int) -> str:
    """Start a session that is not usable yet: returns a one-time ticket for POST /api/auth/session.

    The ticket passes through page script once; the session token itself is only ever sent in a
    Set-Cookie header (HttpOnly), so no script can read the credential that keeps one logged in.
    """
    ticket = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        AuthSession(
            token_hash=_token_hash(ticket),
            account_id=account_id,
            created_at=now,
            expires_at=now + timedelta(days=get_settings().session_days),
            pending_until=now + timedelta(seconds=LOGIN_TICKET_SECONDS),
        )
    )
    session.flush()
    return ticket


def redeem_login_ticket(session: Session, ticket: object) -> str | None:
    """Trade a fresh, unused ticket for the session token (once); None otherwise."""
    if not isinstance(ticket, str) or not ticket or len(ticket) > 200:
        return None
    now = clock.now()
    row = session.exec(
        select(AuthSession).where(AuthSession.token_hash == _token_hash(ticket))
    ).first()
    if (
        row is None
        or row.pending_until is None
        or row.revoked_at is not None
        or _aware(row.pending_until) <= now
    ):
        return None
    token = secrets.token_urlsafe(32)
    # Conditional on the ticket still being the row's hash: of two concurrent redemptions one
    # updates the row and the other sees 0 rows.
    result = session.execute(
        update(AuthSession)
        .where(AuthSession.id == row.id, AuthSession.token_hash == _token_hash(ticket))
        .values(token_hash=_token_hash(token), pending_until=None)
    )
    changed = cast(CursorResult[Any], result).rowcount
    return token if changed == 1 else None


def token_hash(token: object) -> str | None:
    """The stored form of a browser token (None for anything that cannot be one)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    return _token_hash(token)


def live_token_hashes(session: Session, account_id: int) -> frozenset[str]:
    """The stored hashes of the account's live logins (none if the account is disabled)."""
    now = clock.now()
    rows = session.execute(
        select(AuthSession.token_hash, AuthSession.expires_at)
        .join(Account, Account.id == AuthSession.account_id)
        .where(
            AuthSession.account_id == account_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.pending_until.is_(None),
            Account.disabled_at.is_(None),
        )
    ).all()
    return frozenset(hashed for hashed, expires_at in rows if _aware(expires_at) > now)


def live_account_id(session: Session, hashed_token: str) -> int | None:
    """The account of a live login (not pending, revoked or expired; account not disabled)."""
    found = live_login(session, hashed_token)
    return None if found is None else found[0]


def live_login(session: Session, hashed_token: str) -> tuple[int, datetime] | None:
    """(account id, expiry) of a live login (not pending, revoked or expired; account not
    disabled), or None.

    One indexed query: the session guard (state/session_guard.py) runs it before an event of a
    signed-in tab whenever its process has not just seen the login live.
    """
    row = session.execute(
        core_select(
            AuthSession.account_id,
            AuthSession.expires_at,
            AuthSession.revoked_at,
            AuthSession.pending_until,
            Account.disabled_at,
        )
        .join(Account, Account.id == AuthSession.account_id)
        .where(AuthSession.token_hash == hashed_token)
    ).first()
    if row is None:
        return None
    account_id, expires_at, revoked_at, pending_until, disabled_at = row
    if revoked_at is not None or pending_until is not None or disabled_at is not None:
        return None
    expires_at = _aware(expires_at)
    if expires_at <= clock.now():
        return None
    return account_id, expires_at


def _live_session(session: Session, token: object) -> AuthSession | None:
    # Tokens come from a browser cookie: anything can arrive.
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    row = session.exec(
        select(AuthSession).where(AuthSession.token_hash == _token_hash(token))
    ).first()
    if row is None or row.revoked_at is not None or row.pending_until is not None:
        return None
    if _aware(row.expires_at) <= clock.now():
        return None
    return row


def lookup_session(session: Session, token: object) -> Account | None:
    """The account a browser token belongs to, or None (unknown, expired, revoked, disabled)."""
    row = _live_session(session, token)
    if row is None:
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.disabled_at is not None:
        return None
    return account


def revoke_login(session: Session, token: object) -> bool:
    """Log out: the token stops working at once. True when a live session ended."""
    row = _live_session(session, token)
    if row is None:
        return False
    row.revoked_at = clock.now()
    session.add(row)
    # The account's other open tabs send no event while idle: the live push tells them.
    notifications.announce(session, row.account_id, notifications.SESSION)
    return True


def revoke_all_logins(session: Session, account_id: int) -> int:
    """Log out everywhere: every session of the account ends at once (open tabs are refused on
    their next event). Returns how many were live."""
    now = clock.now()
    result = session.execute(
        update(AuthSession)
        .where(
            AuthSession.account_id == account_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .values(revoked_at=now)
    )
    revoked = int(cast(CursorResult[Any], result).rowcount or 0)
    if revoked:
        notifications.announce(session, account_id, notifications.SESSION)
    return revoked


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
