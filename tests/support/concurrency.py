"""Run the same work on several threads released at the same moment, as concurrent requests
would arrive: for the tests of "twice at once charges once" and "never below zero"."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def at_once(n: int, work: Callable[[int], Any], *, timeout: float = 60) -> list[Any]:
    """Start `work(0)` … `work(n - 1)` on n threads behind one barrier; returns each one's result,
    or the exception it raised (the test asserts on them)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001  (returned: the test asserts on it)
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results


def exceptions(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]
