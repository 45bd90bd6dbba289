"""Signed links (itsdangerous): the email-confirmation link carries (account id, address),
signed with the app's secret and stamped with its time, so it cannot be forged or edited and
stops working after CONFIRM_MAX_AGE.

The secret is WORKROOM_SECRET_KEY when set; otherwise one is generated on first use and kept in
the app_setting table, so every worker, the CLI and a restart share it.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from workroom_app.db import write_session
from workroom_app.models import AppSetting
from workroom_app.settings import get_settings

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
    configured = getattr(get_settings(), "secret_key", "")
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
