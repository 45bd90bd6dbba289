"""Alert settings: each account's low-balance threshold, which alert emails it gets, and its
auto top-up fields (one alert_settings row, written under the account lock), with the
in-memory copy the after-commit watcher reads (billing/alerts.py) and forgets on every change.
billing/alerts.py re-exports every name here."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from workroom_app.billing import accounts, clock, invoices
from workroom_app.billing.catalog import get_catalog
from workroom_app.db import read_session
from workroom_app.models import AlertKind, AlertSettings

DEFAULT_LOW_BALANCE_PERCENT = 10
MAX_THRESHOLD = 10_000_000
# How long a process trusts its copy of an account's thresholds (another
# worker may change them; the owner's own process forgets its copy at once).
WATCH_TTL_SECONDS = 30.0

EMAIL_SETTING: dict[str, str] = {
    AlertKind.LOW_BALANCE: "email_low_balance",
    AlertKind.CREDITS_EXPIRING: "email_credits_expiring",
    AlertKind.PAYMENT_FAILED: "email_payment_failed",
    AlertKind.PLAN_ENDED: "email_plan_ended",
}

_S = AlertSettings.__table__


class AlertError(Exception):
    """A settings change that cannot be made; the message is user-readable."""


# ----------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    low_balance_threshold: int | None
    email_low_balance: bool
    email_credits_expiring: bool
    email_payment_failed: bool
    email_plan_ended: bool
    auto_top_up: bool
    top_up_threshold: int
    top_up_pack: str | None
    top_up_monthly_cap: int

    def emails(self, kind: str) -> bool:
        attr = EMAIL_SETTING.get(kind)
        return True if attr is None else bool(getattr(self, attr))


DEFAULTS = Settings(None, True, True, True, True, False, 0, None, 0)


def read_settings(session: Session, account_id: int) -> Settings:
    row = session.connection().execute(select(_S).where(_S.c.account_id == account_id)).first()
    if row is None:
        return DEFAULTS
    return Settings(
        row.low_balance_threshold,
        row.email_low_balance,
        row.email_credits_expiring,
        row.email_payment_failed,
        row.email_plan_ended,
        row.auto_top_up,
        row.top_up_threshold,
        row.top_up_pack,
        row.top_up_monthly_cap,
    )


def default_low_balance_threshold(session: Session, account_id: int) -> int:
    """10% of the plan's monthly credits (rounded up; 0 on Free, whose credits are a one-off trial)."""
    plan = get_catalog().plan(accounts.current_plan_key(session, account_id))
    return -(-plan.monthly_credits * DEFAULT_LOW_BALANCE_PERCENT // 100)


def low_balance_threshold(
    session: Session, account_id: int, settings: Settings | None = None
) -> int:
    settings = settings or read_settings(session, account_id)
    if settings.low_balance_threshold is not None:
        return settings.low_balance_threshold
    return default_low_balance_threshold(session, account_id)


def check_whole(value: object, what: str, *, minimum: int = 0, maximum: int = MAX_THRESHOLD) -> int:
    """A whole number from a form (int, or digits as text), or AlertError."""
    if isinstance(value, bool):
        raise AlertError(f"The {what} must be a whole number.")
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text.isdigit() or len(text) > 12:
            raise AlertError(
                f"The {what} must be a whole number of {'credits' if 'threshold' in what else 'times'}."
            )
        value = int(text)
    if not isinstance(value, int):
        raise AlertError(f"The {what} must be a whole number.")
    if value < minimum:
        raise AlertError(f"The {what} must be at least {minimum}.")
    if value > maximum:
        raise AlertError(f"The {what} must be at most {maximum:,}.")
    return value


def _upsert(session: Session, account_id: int, values: dict) -> None:
    invoices.lock_account(session, account_id)
    conn = session.connection()
    values = {**values, "updated_at": clock.now()}
    if conn.execute(select(_S.c.account_id).where(_S.c.account_id == account_id)).first() is None:
        row = {
            "account_id": account_id,
            "low_balance_threshold": None,
            "email_low_balance": True,
            "email_credits_expiring": True,
            "email_payment_failed": True,
            "email_plan_ended": True,
            "auto_top_up": False,
            "top_up_threshold": 0,
            "top_up_pack": None,
            "top_up_monthly_cap": 0,
        }
        conn.execute(_S.insert().values(**{**row, **values}))
    else:
        conn.execute(update(_S).where(_S.c.account_id == account_id).values(**values))
    forget(account_id)


def save_alert_settings(
    session: Session,
    account_id: int,
    *,
    low_balance_threshold: object,
    email_low_balance: object,
    email_credits_expiring: object,
    email_payment_failed: object,
    email_plan_ended: object,
) -> Settings:
    """Validate and store the alert settings. `low_balance_threshold` None or
    "" means the default (10% of the plan's monthly credits)."""
    threshold = None
    if low_balance_threshold not in (None, ""):
        threshold = check_whole(low_balance_threshold, "low-balance threshold")
    flags = {}
    for name, value in (
        ("email_low_balance", email_low_balance),
        ("email_credits_expiring", email_credits_expiring),
        ("email_payment_failed", email_payment_failed),
        ("email_plan_ended", email_plan_ended),
    ):
        if not isinstance(value, bool):
            raise AlertError("Each email setting must be on or off.")
        flags[name] = value
    _upsert(session, account_id, {"low_balance_threshold": threshold, **flags})
    return read_settings(session, account_id)


def unsubscribe(session: Session, account_id: int, kind: str) -> None:
    """The email's unsubscribe link: stop that kind of email."""
    attr = EMAIL_SETTING.get(kind)
    if attr is None:
        raise AlertError("Unknown alert.")
    _upsert(session, account_id, {attr: False})


# ----------------------------------------------------------------- the after-commit watcher


@dataclass(frozen=True)
class Watch:
    """What the watcher needs about an account, kept in memory for WATCH_TTL_SECONDS."""

    low_balance_threshold: int
    settings: Settings


_watch_lock = threading.Lock()
_watch_cache: dict[tuple[int, int], tuple[float, Watch]] = {}


def forget(account_id: int) -> None:
    with _watch_lock:
        for key in [k for k in _watch_cache if k[1] == account_id]:
            del _watch_cache[key]


def forget_everything() -> None:
    with _watch_lock:
        _watch_cache.clear()


def watch_for(engine: Engine, account_id: int) -> Watch:
    key = (id(engine), account_id)
    now = time.monotonic()
    hit = _watch_cache.get(key)  # a dict read is atomic: no lock on the common path
    if hit is not None and now - hit[0] < WATCH_TTL_SECONDS:
        return hit[1]
    with read_session(engine) as session:
        settings = read_settings(session, account_id)
        watch = Watch(low_balance_threshold(session, account_id, settings), settings)
    with _watch_lock:
        _watch_cache[key] = (now, watch)
    return watch
