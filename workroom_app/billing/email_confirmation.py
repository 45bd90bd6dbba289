"""The email-confirmation link: written to the outbox in the sign-up's transaction (sent over
SMTP by the scheduler when configured; `workroom outbox show ID` prints it otherwise).

Opening it (GET /api/auth/confirm, http/auth_routes.py) confirms the address and grants the
trial once per mailbox (accounts.confirm_email). The link is signed (security/signing.py), so
it cannot be forged for another account or address, and it expires after a week; a user can
ask for a new one from the banner shown while the address is unconfirmed.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from sqlmodel import Session

from workroom_app.billing import clock
from workroom_app.billing.accounts import trial_credits
from workroom_app.models import Account, OutboxEmail
from workroom_app.security import signing
from workroom_app.settings import get_settings

CONFIRM_PATH = "/api/auth/confirm"


def confirmation_link(account: Account) -> str:
    token = signing.confirmation_token(account.id, account.email)
    return f"{get_settings().public_url.rstrip('/')}{CONFIRM_PATH}?token={quote(token)}"


def queue_confirmation(session: Session, account: Account) -> OutboxEmail:
    """Write the confirmation email for `account` to the outbox (in the caller's transaction)."""
    link = confirmation_link(account)
    body = (
        f"Hello {account.display_name},\n\n"
        f"Please confirm your email address for Workroom by opening this link:\n\n{link}\n\n"
        f"Once it is confirmed, your {trial_credits()} free trial credits are added to your balance.\n"
        "The link works for 7 days. If you did not sign up for Workroom, ignore this email.\n"
    )
    email = OutboxEmail(
        account_id=account.id,
        to_address=account.email,
        subject="Confirm your email address for Workroom",
        body_text=body,
        dedupe_key=f"confirm:{account.id}:{secrets.token_hex(8)}",
        created_at=clock.now(),
    )
    session.add(email)
    session.flush()
    return email
