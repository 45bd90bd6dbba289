"""The SQLite writers' queue (db.FairWriterLock): first come, first served, re-entrant."""

from __future__ import annotations

import threading
import time

import pytest

from workroom_app.db import FairWriterLock


def wait_until(check, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_waiting_writers_are_served_in_the_order_they_asked_even_if_the_holder_asks_again():
    lock = FairWriterLock()
    order: list[str] = []
    waiting = []

    def writer(name: str) -> None:
        waiting.append(name)
        with lock:
            order.append(name)

    lock.acquire()
    first = threading.Thread(target=writer, args=("first",))
    first.start()
    wait_until(lambda: len(lock._waiting) == 1)
    second = threading.Thread(target=writer, args=("second",))
    second.start()
    wait_until(lambda: len(lock._waiting) == 2)
    # The holder releases and asks again at once (a burst of writes from one thread): it
    # queues behind the two that were waiting, as an unfair lock would not make it.
    lock.release()
    with lock:
        order.append("holder again")
    first.join(5)
    second.join(5)
    assert order == ["first", "second", "holder again"]


def test_the_lock_is_re_entrant_and_only_its_holder_may_release_it():
    lock = FairWriterLock()
    taken_elsewhere: list[bool] = []

    def other_writer() -> None:
        with lock:
            taken_elsewhere.append(True)

    with lock, lock:  # a nested write in one thread does not wait for itself
        other = threading.Thread(target=other_writer)
        other.start()
        wait_until(lambda: len(lock._waiting) == 1)
        lock.release()
        time.sleep(0.05)
        assert taken_elsewhere == []  # still held once more
        lock.acquire()
        with pytest.raises(RuntimeError):
            release_from_another_thread(lock)
    other.join(5)
    assert taken_elsewhere == [True]


def release_from_another_thread(lock: FairWriterLock) -> None:
    errors: list[BaseException] = []

    def release() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=release)
    thread.start()
    thread.join(5)
    if errors:
        raise errors[0]
