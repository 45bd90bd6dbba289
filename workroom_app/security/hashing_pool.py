"""Password hashing off the event loop, on a small pool of its own.

argon2id is slow and memory-hard on purpose (about 50 ms and 64 MB per hash here). Run on the
event loop it stalls every tab; run on asyncio's default thread pool, a flood of log-ins fills
that pool and the CPU, and everything else that uses it (database reads, /api/health) queues
behind. So log-ins and sign-ups hash on this pool of at most HASH_THREADS threads (half the
cores, at least one, so memory stays bounded too), and when more than MAX_WAITING requests are
already waiting a new one is refused at once with a "busy" message instead of piling up.
One client address holds at most PER_ADDRESS places (running or waiting), so a flood from one
address cannot fill the queue in front of everybody else.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

HASH_THREADS = max(1, (os.cpu_count() or 2) // 2)
MAX_WAITING = 8 * HASH_THREADS
BUSY_MESSAGE = "The server is busy with other log-ins. Try again in a few seconds."

_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="password-hash")
PER_ADDRESS = 2

_count_lock = threading.Lock()
_in_flight = 0
_by_address: dict[str, int] = {}


class HashingBusy(Exception):
    """More hashing requests are waiting than the pool should queue."""


def in_flight() -> int:
    return _in_flight


def saturated(address: str = "") -> bool:
    """True when a new request would be refused as busy (checked before the rate limits count
    an attempt, so being told "busy" never uses up a user's tries)."""
    return _in_flight >= HASH_THREADS + MAX_WAITING or _by_address.get(address, 0) >= PER_ADDRESS


async def run(fn: Callable[..., T], *args, address: str = "") -> T:
    """Run `fn(*args)` (which hashes or verifies a password) on the hashing pool, on behalf of
    the client at `address`."""
    global _in_flight
    with _count_lock:
        if _in_flight >= HASH_THREADS + MAX_WAITING or _by_address.get(address, 0) >= PER_ADDRESS:
            raise HashingBusy(BUSY_MESSAGE)
        _in_flight += 1
        _by_address[address] = _by_address.get(address, 0) + 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
    finally:
        with _count_lock:
            _in_flight -= 1
            left = _by_address.get(address, 1) - 1
            if left > 0:
                _by_address[address] = left
            else:
                _by_address.pop(address, None)
