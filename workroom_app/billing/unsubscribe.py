"""One-click unsubscribe from an alert email, without logging in.

Every alert email that has an email setting (low balance, credits expiring, payment
failed, plan ended) carries a signed link in its body and the RFC 8058 headers
`List-Unsubscribe: <link>` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`,
so a mail client's Unsubscribe button works too. The link names the account and
that alert kind, signed with the app's secret (security/signing.py: itsdangerous,
WORKROOM_SECRET_KEY), and works for 90 days. It turns off that kind's email for
that account only ("Turning an email off stops that email; the alert still shows in
the app"). A tampered, expired or other-kind link is refused and changes nothing.
The route is http/unsubscribe_routes.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlmodel import Session

from workroom_app import settings as app_settings
from workroom_app.billing import alerts
from workroom_app.models import Account, AlertKind
from workroom_app.security import signing

UNSUBSCRIBE_PATH = "/api/alerts/unsubscribe"

# What the page and the email call each kind.
KIND_NAMES = {
    AlertKind.LOW_BALANCE.value: "low balance",
    AlertKind.CREDITS_EXPIRING.value: "credits expiring",
    AlertKind.PAYMENT_FAILED.value: "payment failed",
    AlertKind.PLAN_ENDED.value: "plan ended",
}


def unsubscribable(kind: str) -> bool:
    return kind in alerts.EMAIL_SETTING


def link(account_id: int, kind: str, session: Session | None = None) -> str:
    """The absolute one-click link for this account and alert kind (`session`: the
    caller's open transaction, if any)."""
    token = signing.unsubscribe_token(account_id, kind, session=session)
    base = app_settings.get_settings().public_url.rstrip("/")
    return f"{base}{UNSUBSCRIBE_PATH}/{quote(kind)}?token={quote(token)}"


@dataclass(frozen=True)
class Answer:
    ok: bool
    message: str


REFUSED = {
    "expired": "This unsubscribe link has expired. Turn the email off under Subscription > "
    "Alerts after logging in, or use the link in a newer email.",
    "invalid": "This unsubscribe link is not valid (it may have been changed or cut short). "
    "Nothing was changed.",
    "kind": "This unsubscribe link is for another kind of email. Nothing was changed.",
}


def check(kind: object, token: object) -> tuple[int, str] | Answer:
    """(account id, kind) for a link that may be used; otherwise the refusal."""
    if not isinstance(kind, str) or not unsubscribable(kind):
        return Answer(False, REFUSED["kind"])
    read = signing.read_unsubscribe_token(token)
    if isinstance(read, str):
        return Answer(False, REFUSED[read])
    account_id, signed_kind = read
    if signed_kind != kind:
        return Answer(False, REFUSED["kind"])
    return account_id, kind


def apply(session: Session, kind: object, token: object) -> Answer:
    """Turn that kind's email off for the account the link names (idempotent)."""
    checked = check(kind, token)
    if isinstance(checked, Answer):
        return checked
    account_id, kind = checked
    if session.get(Account, account_id) is None:
        return Answer(False, REFUSED["invalid"])
    alerts.unsubscribe(session, account_id, kind)
    alerts.forget(account_id)
    return Answer(
        True,
        f"You will no longer get {KIND_NAMES[kind]} emails. The alert still shows in the app; "
        "you can turn the email back on under Subscription > Alerts.",
    )
