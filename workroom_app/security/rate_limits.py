"""Rate limits (the `limits` library, moving windows) with messages that say when to retry.

Failed log-ins are counted, and checked before any password is hashed, so a refused attempt
costs nothing and a successful log-in never counts (an office behind one address is not
throttled by its own colleagues). The hashing pool lets one address have at most 2 log-ins in
progress, so concurrent attempts cannot slip many guesses past a check. Limits:
- per account and client address (the guesser's back-off: a few tries a minute, more an hour,
  a ceiling a day);
- per client address, whatever the account (one address trying many accounts);
- per account, whatever the address (a distributed guess), with a ceiling high enough that an
  attacker cannot lock the owner out by failing on purpose from a few addresses.
A correct password clears that account-and-address counter (a user who mistyped a few times is
not punished once in). Sign-ups are counted per address.

Storage: in memory by default (one process); WORKROOM_RATE_LIMIT_STORAGE=redis://... shares the
counters between workers.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many, storage, strategies

from workroom_app.settings import get_settings

LOGIN_PER_ACCOUNT_AND_ADDRESS = parse_many("5/minute;20/hour;50/day")
LOGIN_PER_ACCOUNT = parse_many("100/hour;300/day")


def _per_address(setting: str) -> list[RateLimitItem]:
    """The per-address limits come from settings: behind a proxy or NAT many people share one
    address (an office, the browser tests' 127.0.0.1), so an operator must be able to raise them."""
    return parse_many(getattr(get_settings(), setting))


_lock = threading.Lock()
_limiter: strategies.MovingWindowRateLimiter | None = None
_storage: storage.Storage | None = None


def _get_limiter() -> strategies.MovingWindowRateLimiter:
    global _limiter, _storage
    with _lock:
        if _limiter is None:
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
    if seconds <= 90 * 60:
        n = math.ceil(seconds / 60)
        return f"{n} minute" + ("" if n == 1 else "s")
    n = math.ceil(seconds / 3600)
    return f"{n} hour" + ("" if n == 1 else "s")


def _hit(items: list[RateLimitItem], namespace: str, *key: str) -> Refusal | None:
    """Count one attempt against every tier; a Refusal (with the longest wait) when any is full.

    hit() is check-and-count in one step, so concurrent attempts cannot all slip through.
    """
    limiter = _get_limiter()
    refusal: Refusal | None = None
    for item in items:
        if not limiter.hit(item, namespace, *key):
            reset_at = limiter.get_window_stats(item, namespace, *key).reset_time
            wait = max(1, math.ceil(reset_at - time.time()))
            if refusal is None or wait > refusal.retry_after:
                refusal = Refusal(wait)
    return refusal


def _full(items: list[RateLimitItem], namespace: str, *key: str) -> Refusal | None:
    """Like _hit, without counting: a Refusal when any tier has no room left."""
    limiter = _get_limiter()
    refusal: Refusal | None = None
    for item in items:
        if not limiter.test(item, namespace, *key):
            reset_at = limiter.get_window_stats(item, namespace, *key).reset_time
            wait = max(1, math.ceil(reset_at - time.time()))
            if refusal is None or wait > refusal.retry_after:
                refusal = Refusal(wait)
    return refusal


def _login_tiers(
    account_key: str, address: str
) -> list[tuple[list[RateLimitItem], str, tuple[str, ...]]]:
    address = address or "unknown"
    tiers = [(_per_address("rate_limit_login_per_address"), "login-address", (address,))]
    if account_key:
        tiers.append(
            (LOGIN_PER_ACCOUNT_AND_ADDRESS, "login-account-address", (account_key, address))
        )
        tiers.append((LOGIN_PER_ACCOUNT, "login-account", (account_key,)))
    return tiers


def login_attempt(account_key: str, address: str) -> Refusal | None:
    """Before hashing: a Refusal (with the longest wait) when failures used up any limit."""
    found = [
        r for items, ns, key in _login_tiers(account_key, address) if (r := _full(items, ns, *key))
    ]
    return max(found, key=lambda r: r.retry_after) if found else None


def login_failed(account_key: str, address: str) -> None:
    for items, ns, key in _login_tiers(account_key, address):
        _hit(items, ns, *key)


def login_succeeded(account_key: str, address: str) -> None:
    limiter = _get_limiter()
    for item in LOGIN_PER_ACCOUNT_AND_ADDRESS:
        limiter.clear(item, "login-account-address", account_key, address or "unknown")


def signup_attempt(address: str) -> Refusal | None:
    return _hit(
        _per_address("rate_limit_signup_per_address"), "signup-address", address or "unknown"
    )


CONFIRMATION_PER_ACCOUNT = parse_many("3/hour;10/day")


def confirmation_attempt(account_id: int) -> Refusal | None:
    return _hit(CONFIRMATION_PER_ACCOUNT, "confirm-email", str(account_id))
