"""Rate limits (the `limits` library, moving windows) with messages that say when to retry.

Log-in attempts are counted per account (the normalised email) and per client address before
any password is hashed, so a refused attempt costs nothing; the tiers give the back-off: a few
tries a minute, more an hour, a ceiling a day. A correct password clears the account's counter
(a user who mistyped a few times is not punished once in). Sign-ups are counted per address.

Storage: in memory by default (one process); WORKROOM_RATE_LIMIT_STORAGE=redis://... shares the
counters between workers.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many, storage, strategies

LOGIN_PER_ACCOUNT = parse_many("5/minute;20/hour;50/day")
LOGIN_PER_ADDRESS = parse_many("20/minute;100/hour;500/day")
SIGNUP_PER_ADDRESS = parse_many("3/hour;10/day")

_lock = threading.Lock()
_limiter: strategies.MovingWindowRateLimiter | None = None
_storage: storage.Storage | None = None


def _get_limiter() -> strategies.MovingWindowRateLimiter:
    global _limiter, _storage
    with _lock:
        if _limiter is None:
            from workroom_app.settings import get_settings

            _storage = storage.storage_from_string(get_settings().rate_limit_storage or "memory://")
            _limiter = strategies.MovingWindowRateLimiter(_storage)
        return _limiter


def reset() -> None:
    """Forget every counter (tests; an operator after a false alarm)."""
    global _limiter, _storage
    with _lock:
        if _storage is not None:
            _storage.reset()
        _limiter = None
        _storage = None


@dataclass(frozen=True)
class Refusal:
    retry_after: int  # seconds

    def message(self, what: str) -> str:
        return f"Too many {what}. Try again in {describe_wait(self.retry_after)}."


def describe_wait(seconds: int) -> str:
    if seconds < 60:
        n = max(1, seconds)
        return f"{n} second" + ("" if n == 1 else "s")
    if seconds < 3600:
        n = math.ceil(seconds / 60)
        return f"{n} minute" + ("" if n == 1 else "s")
    n = math.ceil(seconds / 3600)
    return f"{n} hour" + ("" if n == 1 else "s")


def _hit(items: list[RateLimitItem], namespace: str, key: str) -> Refusal | None:
    """Count one attempt against every tier; a Refusal (with the longest wait) when any is full.

    hit() is check-and-count in one step, so concurrent attempts cannot all slip through.
    """
    limiter = _get_limiter()
    refusal: Refusal | None = None
    for item in items:
        if not limiter.hit(item, namespace, key):
            reset_at = limiter.get_window_stats(item, namespace, key).reset_time
            wait = max(1, math.ceil(reset_at - time.time()))
            if refusal is None or wait > refusal.retry_after:
                refusal = Refusal(wait)
    return refusal


def login_attempt(account_key: str, address: str) -> Refusal | None:
    by_address = _hit(LOGIN_PER_ADDRESS, "login-address", address or "unknown")
    by_account = _hit(LOGIN_PER_ACCOUNT, "login-account", account_key) if account_key else None
    if by_address and by_account:
        return by_address if by_address.retry_after >= by_account.retry_after else by_account
    return by_address or by_account


def login_succeeded(account_key: str) -> None:
    limiter = _get_limiter()
    for item in LOGIN_PER_ACCOUNT:
        limiter.clear(item, "login-account", account_key)


def signup_attempt(address: str) -> Refusal | None:
    return _hit(SIGNUP_PER_ADDRESS, "signup-address", address or "unknown")


CONFIRMATION_PER_ACCOUNT = parse_many("3/hour;10/day")


def confirmation_attempt(account_id: int) -> Refusal | None:
    return _hit(CONFIRMATION_PER_ACCOUNT, "confirm-email", str(account_id))
