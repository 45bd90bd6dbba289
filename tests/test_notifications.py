"""Change notifications (workroom_app/notifications.py): sent when the writing transaction commits,
never on rollback, on each transport (PostgreSQL NOTIFY, Redis, SQLite's in-process bus and
change_log for other processes); the single billing scheduler; the renderer port's one owner."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event

from tests.support.fixtures import serve_database
from workroom_app import notifications, settings
from workroom_app.billing import accounts, ledger
from workroom_app.db import write_session
from workroom_app.generation import jobs
from workroom_app.models import JobStatus
from workroom_app.scheduler_lock import SchedulerLock

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("WORKROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


@pytest.fixture
def use(monkeypatch):
    """use(engine, backend): route get_engine() to `engine` and pick the notification transport."""

    def _use(engine, backend: str = "auto") -> None:
        serve_database(monkeypatch, engine)
        monkeypatch.setenv("WORKROOM_NOTIFY", backend)
        if backend == "redis":
            monkeypatch.setenv("WORKROOM_REDIS_URL", REDIS_URL)
        settings.get_settings.cache_clear()

    yield _use
    settings.get_settings.cache_clear()


def redis_skip_reason() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {REDIS_URL} is not reachable: {exc.__class__.__name__}"
    return None


def new_account(engine, email: str = "ann@example.com") -> int:
    with write_session(engine) as s:
        return accounts.sign_up(s, email, "correct horse", "Ann").id


def adjust(engine, account_id: int, amount: int, key: str) -> None:
    with write_session(engine) as s:
        ledger.staff_adjust(
            s, account_id, amount, reason="test", actor_id=account_id, idempotency_key=key
        )


async def collect(
    feed: notifications.ChangeFeed, write, *, settle: float = 0.4
) -> list[notifications.Change]:
    """The changes `feed` hears while `write()` runs in a thread (as the app's writes do)."""
    heard: list[notifications.Change] = []
    feed.subscribe(heard.append)
    await asyncio.to_thread(write)
    await asyncio.sleep(settle)
    feed.unsubscribe(heard.append)
    return heard


def check_commit_and_rollback(engine) -> None:
    account_id = new_account(engine)

    async def scenario():
        async with notifications.ChangeFeed(engine) as feed:
            heard = await collect(feed, lambda: adjust(engine, account_id, 5, "commit-1"))
            assert [c.account_id for c in heard] == [account_id]
            assert notifications.BALANCE in heard[0].kinds
            assert heard[0].tab is None  # made outside any tab's event

            def made_by_a_tab():
                with notifications.acting_for_tab("tab-1"):
                    adjust(engine, account_id, 1, "by-tab-1")
                    # A write that follows in the same thread (an auto top-up after the debit)
                    # is not the tab's own: that tab must hear of it.
                    adjust(engine, account_id, 1, "after-tab-1")

            heard = await collect(feed, made_by_a_tab)
            assert [(c.account_id, c.tab) for c in heard] == [
                (account_id, "tab-1"),
                (account_id, None),
            ]

            def rolled_back():
                with pytest.raises(RuntimeError), write_session(engine) as s:
                    ledger.staff_adjust(
                        s, account_id, 5, reason="t", actor_id=account_id, idempotency_key="rb"
                    )
                    raise RuntimeError("changed my mind")

            assert await collect(feed, rolled_back) == []

            def job_submitted():
                with write_session(engine) as s:
                    jobs.submit(
                        s,
                        account_id,
                        {
                            "feature": "image",
                            "model": "flux_schnell",
                            "resolution": "1K",
                            "count": "1",
                            "prompt": "p",
                        },
                        client_request_id="n-1",
                    )

            heard = await collect(feed, job_submitted)
            assert len(heard) == 1  # one notification per account per transaction
            assert {notifications.BALANCE, notifications.JOB, notifications.QUEUED} <= heard[
                0
            ].kinds

    asyncio.run(scenario())


def test_a_payload_names_the_acting_tab_only_when_it_is_a_plausible_client_token():
    payload = notifications.encode(7, {notifications.JOB}, "3f2a")
    assert notifications.decode(payload) == notifications.Change(7, frozenset({"job"}), "3f2a")
    assert notifications.decode(notifications.encode(7, {"job"})).tab is None
    too_long = '{"a":7,"k":["job"],"t":"%s"}' % ("x" * (notifications.MAX_TAB_LENGTH + 1))
    assert notifications.decode(too_long) == notifications.Change(7, frozenset({"job"}))
    assert notifications.decode('{"a":7,"k":["job"],"t":5}').tab is None


def test_in_process_bus_delivers_on_commit_and_not_on_rollback(sqlite_engine, use):
    use(sqlite_engine, "local")
    check_commit_and_rollback(sqlite_engine)


def test_postgres_notify_delivers_on_commit_and_not_on_rollback(pg_engine, use):
    use(pg_engine, "auto")
    assert notifications.backend_for(pg_engine) == "postgres"
    check_commit_and_rollback(pg_engine)


def test_redis_publish_delivers_on_commit_and_not_on_rollback(sqlite_engine, use):
    reason = redis_skip_reason()
    if reason:
        pytest.skip(reason)
    use(sqlite_engine, "redis")
    check_commit_and_rollback(sqlite_engine)


def test_a_savepoint_commits_nothing_until_the_outer_transaction(sqlite_engine, use):
    use(sqlite_engine, "local")
    account_id = new_account(sqlite_engine)

    async def scenario():
        async with notifications.ChangeFeed(sqlite_engine) as feed:
            heard: list = []
            feed.subscribe(heard.append)
            gate, release = threading.Event(), threading.Event()

            def write():
                with write_session(sqlite_engine) as s:
                    with s.begin_nested():
                        ledger.staff_adjust(
                            s, account_id, 3, reason="t", actor_id=account_id, idempotency_key="sp"
                        )
                    gate.set()
                    release.wait(5)

            writer = asyncio.ensure_future(asyncio.to_thread(write))
            await asyncio.to_thread(gate.wait, 5)
            await asyncio.sleep(0.3)
            assert heard == []  # the savepoint is released, the transaction is still open
            release.set()
            await writer
            await asyncio.sleep(0.3)
            assert [c.account_id for c in heard] == [account_id]

    asyncio.run(scenario())


@pytest.mark.slow  # starts a second Python process
def test_a_change_made_by_another_process_reaches_this_one_on_sqlite(sqlite_engine, use):
    """The CLI or a separate `workroom worker` writes: this process hears it through change_log."""
    use(sqlite_engine, "local")
    account_id = new_account(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    script = (
        "from workroom_app.db import get_engine, write_session\n"
        "from workroom_app.billing import ledger\n"
        f"with write_session(get_engine({url!r})) as s:\n"
        f"    ledger.staff_adjust(s, {account_id}, 9, reason='cli', actor_id={account_id}, idempotency_key='cli-1')\n"
    )

    async def scenario():
        async with notifications.ChangeFeed(sqlite_engine) as feed:
            heard = await collect(
                feed,
                lambda: subprocess.run(
                    [sys.executable, "-c", script],
                    cwd=REPO,
                    check=True,
                    env={**os.environ, "WORKROOM_NOTIFY": "local"},
                ),
                settle=1.0,
            )
            assert [c.account_id for c in heard] == [account_id]
            assert notifications.BALANCE in heard[0].kinds

    asyncio.run(scenario())


def test_the_sqlite_listener_issues_no_sql_while_nothing_changes(sqlite_engine, use):
    use(sqlite_engine, "local")
    new_account(sqlite_engine)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # noqa: ANN001
        statements.append(statement)

    async def scenario():
        async with notifications.ChangeFeed(sqlite_engine):
            await asyncio.sleep(0.3)
            event.listen(sqlite_engine, "before_cursor_execute", count)
            try:
                await asyncio.sleep(2.0)
            finally:
                event.remove(sqlite_engine, "before_cursor_execute", count)

    asyncio.run(scenario())
    assert statements == []


def test_worker_endings_and_refunds_announce_the_job_and_the_balance(sqlite_engine, use):
    use(sqlite_engine, "local")
    account_id = new_account(sqlite_engine)
    with write_session(sqlite_engine) as s:
        job = jobs.submit(
            s,
            account_id,
            {
                "feature": "image",
                "model": "flux_schnell",
                "resolution": "1K",
                "count": "1",
                "prompt": "p",
            },
            client_request_id="w-1",
        )

    async def scenario():
        async with notifications.ChangeFeed(sqlite_engine) as feed:

            def fail():
                with write_session(sqlite_engine) as s:
                    jobs.fail(s, job.id, JobStatus.FAILED, "boom")

            heard = await collect(feed, fail)
            assert len(heard) == 1 and {notifications.JOB, notifications.BALANCE} <= heard[0].kinds

            def fail_again():  # already ended: nothing changes, nothing is announced
                with write_session(sqlite_engine) as s:
                    jobs.fail(s, job.id, JobStatus.FAILED, "boom")

            assert await collect(feed, fail_again) == []

    asyncio.run(scenario())


# ------------------------------------------------------------------ one billing scheduler


def test_only_one_scheduler_holds_the_postgres_advisory_lock(pg_engine):
    first, second = SchedulerLock(pg_engine), SchedulerLock(pg_engine)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        assert first.try_acquire() is True  # still held
        first.release()
        assert second.try_acquire() is True
        assert first.try_acquire() is False
    finally:
        first.release()
        second.release()


def test_a_dead_scheduler_connection_hands_the_lock_over(pg_engine):
    first, second = SchedulerLock(pg_engine), SchedulerLock(pg_engine)
    try:
        assert first.try_acquire()
        first._conn.invalidate()  # the process holding it died: its connection is gone
        first._conn = None
        # The server frees the lock once it sees the connection gone (a moment, longer on a
        # busy machine); a standby scheduler keeps trying, as this does.
        deadline = time.monotonic() + 15
        while not second.try_acquire():
            assert time.monotonic() < deadline, "the lock was not handed over after the holder died"
            time.sleep(0.05)
    finally:
        first.release()
        second.release()


def test_only_one_scheduler_holds_the_sqlite_lock_file(sqlite_engine):
    first, second = SchedulerLock(sqlite_engine), SchedulerLock(sqlite_engine)
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        first.release()
        assert second.try_acquire() is True
    finally:
        first.release()
        second.release()


# ------------------------------------------------------------------ the renderer's port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_processes_starting_the_renderer_at_once_share_one(monkeypatch):
    from workroom_app.generation.providers.local import ensure_local_service, is_reachable

    url = f"http://127.0.0.1:{_free_port()}"
    results: list = []
    errors: list = []

    def start():
        try:
            results.append(ensure_local_service(url))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    started = [r for r in results if r is not None]
    try:
        assert errors == []
        assert len(started) == 1 and results.count(None) == 3  # one owner; the others use it
        assert is_reachable(url)
    finally:
        for service in started:
            service.stop()


def test_a_port_held_by_something_else_is_an_error_not_a_silent_death():
    from workroom_app.generation.providers.local import ensure_local_service

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        url = f"http://127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(RuntimeError, match="not the Workroom renderer"):
            ensure_local_service(url, wait_for_other=0.5)
    finally:
        holder.close()


def test_the_sqlite_change_check_leaves_this_processs_sqlite_locks_alone(tmp_path):
    """Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    own included (sqlite.org/howtocorrupt.html, 2.2): the change check, which reads the WAL
    index (-shm) every 0.1 s, must never do that, or another process writes while this one
    holds SQLite's write lock, and the database is corrupted."""
    database = tmp_path / "locks.db"
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("BEGIN IMMEDIATE")  # this process now holds SQLite's write lock (in the -shm)
    try:
        for _ in range(3):
            assert notifications._stamp(f"{database}-wal") is not None
        other_writer = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
            "try:\n"
            "    c.execute('BEGIN IMMEDIATE')\n"
            "    print('wrote')\n"
            "except sqlite3.OperationalError:\n"
            "    print('locked')\n"
        )
        answer = subprocess.run(
            [sys.executable, "-c", other_writer, str(database)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert answer.stdout.strip() == "locked", answer.stdout + answer.stderr
    finally:
        conn.execute("ROLLBACK")
        conn.close()
