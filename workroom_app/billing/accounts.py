"""Accounts: sign-up, log-in, server-side sessions, roles, the current plan.

Plain Python (no Reflex): the states, the CLI, the seeder and tests all call
these functions with an open session; none of them commits, so a caller can
combine them with its own writes in one transaction (``write_session``).

Messages: a wrong password and an unknown email get the SAME message
("Wrong email or password.") so the login form cannot be used to find out who
has an account. Sign-up must say when an email is taken (the user needs to know
to log in instead), which is the usual trade-off.

Server-side sessions (log-in tokens, tickets, log-out) are in login_sessions.py and the
one-query header read and current plan in account_header.py; their public names are
re-exported here.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import catalog, clock, ledger, staff_roles

# Sessions and the header read live in their own modules; re-exported so that
# `accounts.create_login`, `from workroom_app.billing.accounts import Header` etc. keep working.
from workroom_app.billing.account_header import FREE_PLAN_KEY as FREE_PLAN_KEY
from workroom_app.billing.account_header import Header as Header
from workroom_app.billing.account_header import current_plan_key as current_plan_key
from workroom_app.billing.account_header import header_for_login as header_for_login
from workroom_app.billing.account_header import header_of as header_of
from workroom_app.billing.email_identity import canonical_email
from workroom_app.billing.login_sessions import LOGIN_TICKET_SECONDS as LOGIN_TICKET_SECONDS
from workroom_app.billing.login_sessions import create_login as create_login
from workroom_app.billing.login_sessions import create_login_ticket as create_login_ticket
from workroom_app.billing.login_sessions import live_account_id as live_account_id
from workroom_app.billing.login_sessions import live_login as live_login
from workroom_app.billing.login_sessions import live_token_hashes as live_token_hashes
from workroom_app.billing.login_sessions import lookup_session as lookup_session
from workroom_app.billing.login_sessions import redeem_login_ticket as redeem_login_ticket
from workroom_app.billing.login_sessions import revoke_all_logins as revoke_all_logins
from workroom_app.billing.login_sessions import revoke_login as revoke_login
from workroom_app.billing.login_sessions import token_hash as token_hash
from workroom_app.models import (
    Account,
    ActionType,
    GrantSource,
    Role,
    TrialClaim,
)
from workroom_app.security.text_input import has_control_characters

MIN_PASSWORD_LENGTH = 8
# argon2 hashes whatever it is given; a cap stops a 10 MB "password" from
# burning a CPU core per request.
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 80
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
