"""Accounts: sign-up, log-in, server-side sessions, roles, the current plan.

Plain Python (no Reflex): the states, the CLI, the seeder and tests all call
these functions with an open session; none of them commits, so a caller can
combine them with its own writes in one transaction (``write_session``).

Messages: a wrong password and an unknown email get the SAME message
("Wrong email or password.") so the login form cannot be used to find out who
has an account. Sign-up must say when an email is taken (the user needs to know
to log in instead), which is the usual trade-off.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from workroom_app.billing import clock
from workroom_app.models import (
    Account,
    ActionType,
    AuthSession,
    GrantSource,
    Role,
    Subscription,
    SubscriptionStatus,
)

MIN_PASSWORD_LENGTH = 8
# argon2 hashes whatever it is given; a cap stops a 10 MB "password" from
# burning a CPU core per request.
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 80
DEFAULT_TRIAL_CREDITS = 50
FREE_PLAN_KEY = "free"
WRONG_CREDENTIALS = "Wrong email or password."

# Deliberately simple: one "@", a dot in the domain, no spaces. Real
# validation of an address is sending mail to it.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

_hasher = PasswordHasher()


class AuthError(Exception):
    """A sign-up or log-in problem; the message is shown to the user as is."""


def normalise_email(email: object) -> str:
    if not isinstance(email, str):
        raise AuthError("Enter your email address.")
    value = email.strip().lower()
    if not value:
        raise AuthError("Enter your email address.")
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(value):
        raise AuthError("Enter a valid email address, like name@example.com.")
    return value


def _check_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise AuthError("Enter a password.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"Use a password of at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError(f"Use a password of at most {MAX_PASSWORD_LENGTH} characters.")
    return password


def _clean_display_name(display_name: object, email: str) -> str:
    if display_name is None:
        display_name = ""
    if not isinstance(display_name, str):
        raise AuthError("Enter your name as text.")
    name = " ".join(display_name.split())
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise AuthError(f"Use a name of at most {MAX_DISPLAY_NAME_LENGTH} characters.")
    return name or email.split("@", 1)[0]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def trial_credits() -> int:
    """The one-off trial amount, from the catalog's default (Free) plan when the
    catalog is installed."""
    try:
        from workroom_app.billing import catalog
    except ImportError:  # catalog not installed yet: the product default
        return DEFAULT_TRIAL_CREDITS
    return int(catalog.get_catalog().trial_credits)


def find_account(session: Session, email: str) -> Account | None:
    return session.exec(select(Account).where(Account.email == email)).first()


def sign_up(
    session: Session,
    email: str,
    password: str,
    display_name: str = "",
    *,
    role: str = Role.USER,
) -> Account:
    """Create an account and grant its trial credits (once, by idempotency key).

    Raises AuthError with a user-readable message for malformed input or an
    email already taken; nothing is written then.
    """
    from workroom_app.billing import ledger

    email = normalise_email(email)
    password = _check_password(password)
    name = _clean_display_name(display_name, email)
    if role not in tuple(Role):
        raise AuthError("Unknown role.")
    if find_account(session, email) is not None:
        raise AuthError("An account with this email already exists. Log in instead.")
    account = Account(
        email=email,
        password_hash=hash_password(password),
        display_name=name,
        role=str(role),
        created_at=clock.now(),
    )
    session.add(account)
    try:
        # A savepoint: a concurrent sign-up of the same email loses on the
        # unique index and the caller's transaction stays usable.
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise AuthError("An account with this email already exists. Log in instead.") from None
    ledger.open_account(session, account.id)
    grant_trial(session, account.id)
    return account


def grant_trial(session: Session, account_id: int):
    """The trial grant; its idempotency key makes a retried sign-up grant nothing."""
    from workroom_app.billing import ledger

    return ledger.grant(
        session,
        account_id,
        trial_credits(),
        action_type=ActionType.TRIAL_GRANT,
        source=GrantSource.TRIAL,
        idempotency_key=f"trial:{account_id}",
        expires_at=None,
    )


def authenticate(session: Session, email: str, password: str) -> Account:
    """The account for these credentials, or AuthError("Wrong email or password.")."""
    try:
        email = normalise_email(email)
    except AuthError:
        if isinstance(email, str) and email.strip():
            raise AuthError(WRONG_CREDENTIALS) from None
        raise
    if not isinstance(password, str) or not password:
        raise AuthError("Enter your password.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError(WRONG_CREDENTIALS)
    account = find_account(session, email)
    if account is None:
        # Spend the same time as a real check so response time does not reveal
        # which emails have accounts.
        _hasher.hash(password)
        raise AuthError(WRONG_CREDENTIALS)
    try:
        _hasher.verify(account.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AuthError(WRONG_CREDENTIALS) from None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
        session.add(account)
    return account


def verify_password(account: Account, password: str) -> bool:
    try:
        return _hasher.verify(account.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# ------------------------------------------------------------------ sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_login(session: Session, account_id: int, *, days: int | None = None) -> str:
    """Start a server-side session; returns the token the browser keeps.

    Only the token's SHA-256 is stored, so a database leak does not hand out
    live logins.
    """
    from workroom_app.settings import get_settings

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


def _live_session(session: Session, token: object) -> AuthSession | None:
    # Tokens come from a browser cookie: anything can arrive.
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    row = session.exec(select(AuthSession).where(AuthSession.token_hash == _token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    if _aware(row.expires_at) <= clock.now():
        return None
    return row


def lookup_session(session: Session, token: object) -> Account | None:
    """The account a browser token belongs to, or None (unknown, expired, revoked)."""
    row = _live_session(session, token)
    if row is None:
        return None
    return session.get(Account, row.account_id)


def revoke_login(session: Session, token: object) -> bool:
    """Log out: the token stops working at once. True when a live session ended."""
    row = _live_session(session, token)
    if row is None:
        return False
    row.revoked_at = clock.now()
    session.add(row)
    return True


def _aware(value):
    # SQLite hands back naive datetimes for timezone-aware columns; they are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------- roles/plan


def is_staff(account: Account) -> bool:
    """Any staff role (support, finance, admin; billing/staff_roles.py)."""
    from workroom_app.billing import staff_roles

    return staff_roles.is_staff_role(account.role)


def set_role(session: Session, account_id: int, role: str) -> Account:
    """Set a role as is (the CLI and seeding); staff pages use staff.set_role,
    which checks who asks and writes the audit row."""
    if role not in tuple(Role):
        raise AuthError("Unknown role.")
    account = session.get(Account, account_id)
    if account is None:
        raise AuthError("No such account.")
    account.role = str(role)
    session.add(account)
    return account


def current_plan_key(session: Session, account_id: int) -> str:
    """The plan the account is on now: its live subscription's plan, else Free.

    A past-due subscription still counts: the plan stays until the retries run
    out (PRODUCT_RULES §5), and the renewal code ends it then.
    """
    row = session.exec(
        select(Subscription.plan_key)
        .where(
            Subscription.account_id == account_id,
            Subscription.status.in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]),
        )
        .order_by(Subscription.id.desc())
    ).first()
    return row or FREE_PLAN_KEY


def revoke_all_sessions(session: Session, account_id: int) -> int:
    """Sign an account out everywhere: every live login of it stops working at
    once. Returns how many were live. (Staff "sign out everywhere", issue 10;
    the security work may add its own: keep one.)"""
    from sqlalchemy import update as _update

    now = clock.now()
    result = session.execute(
        _update(AuthSession)
        .where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None),
               AuthSession.expires_at > now)
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)
