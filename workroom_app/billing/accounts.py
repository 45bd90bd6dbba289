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
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import CursorResult, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import catalog, clock, ledger, staff_roles
from workroom_app.billing.email_identity import canonical_email
from workroom_app.models import (
    Account,
    ActionType,
    AuthSession,
    GrantSource,
    Role,
    Subscription,
    SubscriptionStatus,
    TrialClaim,
)
from workroom_app.security.text_input import has_control_characters
from workroom_app.settings import get_settings

MIN_PASSWORD_LENGTH = 8
# argon2 hashes whatever it is given; a cap stops a 10 MB "password" from
# burning a CPU core per request.
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 80
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
    if has_control_characters(value):
        raise AuthError("Email contains a control character. Remove it and try again.")
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
    if has_control_characters(display_name):
        # PostgreSQL refuses NUL outright; no engine should store the rest.
        raise AuthError("Display name contains a control character. Remove it and try again.")
    name = " ".join(display_name.split())
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise AuthError(f"Use a name of at most {MAX_DISPLAY_NAME_LENGTH} characters.")
    return name or email.split("@", 1)[0]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def trial_credits() -> int:
    """The one-off trial amount: the catalog's default (Free) plan's."""
    return int(catalog.get_catalog().trial_credits)


def find_account(session: Session, email: str) -> Account | None:
    return session.exec(select(Account).where(Account.email == email)).first()


def register(
    session: Session,
    email: str,
    password: str,
    display_name: str = "",
    *,
    role: str = Role.USER,
) -> Account:
    """The sign-up form's account: created with its email NOT confirmed and no trial yet.

    The trial follows when the owner opens the confirmation link (confirm_email), at most once
    per mailbox. Raises AuthError with a user-readable message for malformed input or an email
    already taken; nothing is written then.
    """
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
    return account


def sign_up(
    session: Session,
    email: str,
    password: str,
    display_name: str = "",
    *,
    role: str = Role.USER,
) -> Account:
    """An account whose address is already vouched for (the demo seeder, the CLI, tests):
    registered, confirmed and given its trial (once per mailbox, see claim_trial).

    Never reachable from a browser: the sign-up form uses register() + the emailed link.
    """
    account = register(session, email, password, display_name, role=role)
    account.email_confirmed_at = clock.now()
    session.add(account)
    claim_trial(session, account)
    return account


def claim_trial(session: Session, account: Account) -> bool:
    """Grant the trial to a confirmed account unless its mailbox already had one.

    The claim row (keyed by the canonical address) and the grant are written together; a
    concurrent claim of the same mailbox loses on the primary key. True when granted now.
    """
    if account.email_confirmed_at is None:
        return False
    key = canonical_email(account.email)
    existing = session.get(TrialClaim, key)
    if existing is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                TrialClaim(canonical_email=key, account_id=account.id, claimed_at=clock.now())
            )
            session.flush()
    except IntegrityError:
        return False
    grant_trial(session, account.id)
    return True


def confirm_email(session: Session, account_id: int, email: str) -> tuple[Account | None, bool]:
    """The confirmation link was opened: mark the address confirmed and grant the trial once.

    `email` is the address the link was sent to; a link for an address the account no longer
    has confirms nothing. Returns (account or None, whether the trial was granted now).
    Opening the link again changes nothing.
    """
    account = session.get(Account, account_id)
    if account is None or account.email != email or account.disabled_at is not None:
        return None, False
    if account.email_confirmed_at is None:
        account.email_confirmed_at = clock.now()
        session.add(account)
        session.flush()
        # Open tabs drop their "confirm your email" banner (state/live.py).
        notifications.announce(session, account_id, notifications.ACCOUNT)
    return account, claim_trial(session, account)


def grant_trial(session: Session, account_id: int) -> ledger.LedgerResult:
    """The trial grant; its idempotency key makes a retried sign-up grant nothing."""
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
    if account.disabled_at is not None:
        raise AuthError("This account is disabled. Contact support.")
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
        session.add(account)
    return account


# ------------------------------------------------------------------ sessions


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
    """The account of a live login (not pending, revoked or expired; account not disabled).

    One indexed query: this runs before every event of a signed-in tab (state/session_guard.py).
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
    if _aware(expires_at) <= clock.now():
        return None
    return cast(int, account_id)


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


def set_disabled(session: Session, account_id: int, disabled: bool) -> Account:
    """Disable (every session refused from the next event) or re-enable an account."""
    account = session.get(Account, account_id)
    if account is None:
        raise AuthError("No such account.")
    account.disabled_at = clock.now() if disabled else None
    session.add(account)
    if disabled:
        revoke_all_logins(session, account_id)
    return account


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they are UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------- roles/plan


def is_staff(account: Account) -> bool:
    """Any staff role (support, finance, admin; billing/staff_roles.py)."""
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
