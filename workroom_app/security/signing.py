"""Signed links (itsdangerous): the email-confirmation link carries (account id, address),
signed with the app's secret and stamped with its time, so it cannot be forged or edited and
stops working after CONFIRM_MAX_AGE.

The secret is WORKROOM_SECRET_KEY when set; otherwise one is generated on first use and kept in
the app_setting table, so every worker, the CLI and a restart share it.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from workroom_app import settings as app_settings
from workroom_app.db import write_session
from workroom_app.models import AppSetting

CONFIRM_SALT = "workroom.confirm-email"
CONFIRM_MAX_AGE = 7 * 86400
_SETTING_KEY = "signing_secret"


def _stored_secret() -> str:
    for _attempt in range(2):
        try:
            with write_session() as session:
                row = session.get(AppSetting, _SETTING_KEY)
                if row is not None:
                    return row.value
                value = secrets.token_urlsafe(48)
                session.add(AppSetting(key=_SETTING_KEY, value=value))
            return value
        except IntegrityError:  # another process created it first: read theirs
            continue
    raise RuntimeError("could not create the signing secret")


@lru_cache(maxsize=1)
def _secret() -> str:
    configured = getattr(app_settings.get_settings(), "secret_key", "")
    return configured or _stored_secret()


def reset_cache() -> None:
    """Tests switch databases: forget the secret read from the previous one."""
    _secret.cache_clear()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(), salt=CONFIRM_SALT)


def confirmation_token(account_id: int, email: str) -> str:
    return _serializer().dumps({"a": int(account_id), "e": email})


def read_confirmation_token(token: object) -> tuple[int, str] | None:
    """(account id, address) from a link that is genuine and not expired; None otherwise."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        return None
    try:
        data = _serializer().loads(token, max_age=CONFIRM_MAX_AGE)
    except (SignatureExpired, BadSignature):
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("a"), int)
        or not isinstance(data.get("e"), str)
    ):
        return None
    return data["a"], data["e"]


def ensure_secret() -> None:
    """Read (or create) the secret now, outside any open transaction of the caller."""
    _secret()


# ----------------------------------------------------------------- alert email unsubscribe links

UNSUBSCRIBE_SALT = "workroom.unsubscribe-alert"
# Long enough for an old email to still work; short enough that a leaked link dies.
UNSUBSCRIBE_MAX_AGE = 90 * 86400


def _secret_in(session: Any) -> str:
    """The secret, read (or on first use created) in the caller's open transaction:
    alert emails are written inside one, where on SQLite a second write transaction
    (what _stored_secret opens) would wait for the caller's own lock."""
    if _secret.cache_info().currsize or session is None:
        return _secret()
    configured = getattr(app_settings.get_settings(), "secret_key", "")
    if configured:
        return configured
    row = session.get(AppSetting, _SETTING_KEY)
    if row is None:
        try:
            with session.begin_nested():
                session.add(AppSetting(key=_SETTING_KEY, value=secrets.token_urlsafe(48)))
        except IntegrityError:  # another process created it first: read theirs
            pass
        row = session.get(AppSetting, _SETTING_KEY, populate_existing=True)
    return str(row.value)


def _unsubscribe_serializer(session: Any = None) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret_in(session), salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(account_id: int, kind: str, *, session: Any = None) -> str:
    """`session`: the caller's open transaction, if any (see _secret_in)."""
    return _unsubscribe_serializer(session).dumps({"a": int(account_id), "k": str(kind)})


def read_unsubscribe_token(token: object) -> tuple[int, str] | str:
    """(account id, alert kind) from a genuine, unexpired link; otherwise why not:
    "expired" or "invalid" (tampered, forged, or signed for something else)."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        return "invalid"
    try:
        data = _unsubscribe_serializer().loads(token, max_age=UNSUBSCRIBE_MAX_AGE)
    except SignatureExpired:
        return "expired"
    except BadSignature:
        return "invalid"
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("a"), int)
        or not isinstance(data.get("k"), str)
    ):
        return "invalid"
    return data["a"], data["k"]
