"""Change notifications: "account N changed (balance, job, ...)" announced when a write commits.

Write side (plain Python, called from billing/ and generation/ inside their transaction):

    notifications.announce(session, account_id, notifications.BALANCE)

collects the change on the session; nothing leaves the process until the transaction commits,
and a rollback drops it. How it travels depends on the deployment (WORKROOM_NOTIFY, default
"auto"):

    postgres  PostgreSQL: one `pg_notify` per account inside the transaction itself (PostgreSQL
              delivers it only if and when the transaction commits), heard by one LISTEN
              connection per process.
    redis     WORKROOM_REDIS_URL / REFLEX_REDIS_URL: PUBLISH after the commit on a channel per
              deployment (one subscription per process).
    local     SQLite: an in-process bus after the commit, plus a `change_log` row written in the
              transaction for the other processes on the machine (the CLI, `workroom worker`).
              Each process checks the database's WAL file (an os.stat, no SQL) every
              LOCAL_CHECK_SECONDS and reads the new change_log rows only when it moved.

"auto" picks postgres on PostgreSQL, otherwise redis when a Redis URL is set, otherwise local.

Read side (one per process): `ChangeFeed` runs the listener as an asyncio task and calls its
subscribers with each `Change`. When the listener had to reconnect (notifications may have been
missed), subscribers' `on_resync` callbacks run so they re-read what they show once; nothing is
re-read periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
import redis.asyncio as aredis
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction

from workroom_app import db
from workroom_app.settings import get_settings

log = logging.getLogger("workroom.notifications")

# What changed. Subscribers re-read only what the kinds name.
BALANCE = "balance"  # a ledger row was written
JOB = "job"  # a generation job was created, claimed, progressed or ended
QUEUED = "queued"  # a job is waiting for a worker (wakes the workers at once)
SUBSCRIPTION = "subscription"  # plan, period, status of the subscription changed
PAYMENT = "payment"  # a payment / invoice was recorded
SESSION = "session"  # a login ended or changed (log out, log out everywhere, account disabled)
ACCOUNT = "account"  # the account's own fields changed (email address confirmed)
REPORT = "report"  # a broken-result report was filed or decided (a job card shows its status)
KINDS = frozenset({BALANCE, JOB, QUEUED, SUBSCRIPTION, PAYMENT, SESSION, ACCOUNT, REPORT})

PG_CHANNEL = "workroom_changes"
LOCAL_CHECK_SECONDS = 0.1  # an os.stat and a 48-byte read: nothing next to a query
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
CHANGE_LOG_KEEP = 20_000  # rows kept in change_log (SQLite); older ones are pruned by writers
_PRUNE_EVERY = 500

_INFO_KEY = "workroom.changes"
# This process, as written into change_log.origin: its own rows reach it over the in-process bus.
ORIGIN = f"{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Change:
    account_id: int
    kinds: frozenset[str]
    # The tab (Reflex client token) whose own event made the change, when it shows the outcome
    # itself (acting_for_tab): the live push need not send it back to that tab.
    tab: str | None = None


MAX_TAB_LENGTH = 64  # a client token is a UUID; anything longer in a payload is ignored


@dataclass
class _ActingTab:
    token: str
    taken: bool = False


# Set by a state handler around the write whose outcome it applies to its own tab (a
# submission, a cancellation); read in the committing thread (asyncio.to_thread copies the
# context). Only the first transaction that announces a change in the block is the tab's own:
# writes that follow it in the same thread (an auto top-up after the debit) are not.
_acting_tab: ContextVar[_ActingTab | None] = ContextVar("workroom_acting_tab", default=None)
_TAB_KEY = "workroom.acting_tab"


@contextlib.contextmanager
def acting_for_tab(token: str | None) -> Iterator[None]:
    """The first write inside this block that announces a change is announced as made by the tab
    `token` (see Change.tab)."""
    reset = _acting_tab.set(_ActingTab(token) if token else None)
    try:
        yield
    finally:
        _acting_tab.reset(reset)


def _take_acting_tab() -> str | None:
    acting = _acting_tab.get()
    if acting is None or acting.taken:
        return None
    acting.taken = True
    return acting.token


# ------------------------------------------------------------------- configuration


def backend_for(engine: Engine) -> str:
    """'postgres', 'redis' or 'local' for writes and reads against `engine`."""
    choice = (get_settings().notify or "auto").strip().lower()
    if choice not in ("auto", "postgres", "redis", "local"):
        raise ValueError(f"WORKROOM_NOTIFY must be auto, postgres, redis or local, not {choice!r}")
    if choice == "auto":
        if engine.dialect.name == "postgresql":
            return "postgres"
        return "redis" if redis_url() else "local"
    if choice == "postgres" and engine.dialect.name != "postgresql":
        raise ValueError("WORKROOM_NOTIFY=postgres needs a PostgreSQL database")
    return choice


def redis_url() -> str:
    return (get_settings().redis_url or "").strip()


def redis_channel(engine: Engine) -> str:
    """One channel per deployment: deployments sharing a Redis server (or tests) stay apart."""
    name = (get_settings().notify_channel or "").strip()
    if name:
        return name
    url = engine.url.render_as_string(hide_password=True)
    return "workroom:changes:" + hashlib.sha256(url.encode()).hexdigest()[:16]


def encode(account_id: int, kinds: Iterable[str], tab: str | None = None) -> str:
    data: dict[str, Any] = {"a": int(account_id), "k": sorted(kinds)}
    if tab:
        data["t"] = tab
    return json.dumps(data, separators=(",", ":"))


def decode(payload: str | bytes) -> Change | None:
    try:
        data = json.loads(payload)
        kinds = frozenset(k for k in data["k"] if k in KINDS)
        tab = data.get("t")
        if not isinstance(tab, str) or len(tab) > MAX_TAB_LENGTH:
            tab = None
        return Change(int(data["a"]), kinds, tab)
    except (ValueError, KeyError, TypeError):
        log.warning("ignored a malformed change notification: %r", payload[:200])
        return None


# ------------------------------------------------------------------- write side


def announce(target: OrmSession | Connection, account_id: int, *kinds: str) -> None:
    """Record that `account_id` changed in the transaction of `target`; sent on commit."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown change kind {kind!r}")
    if isinstance(target, OrmSession):
        pending: dict[int, set[str]] = target.info.setdefault(_INFO_KEY, {})
        pending.setdefault(int(account_id), set()).update(kinds)
        return
    # A bare Connection (benchmark fast paths): write the transactional part now. It still reaches
    # every process on PostgreSQL and, through change_log, on SQLite; the Redis publish needs the
    # session's commit hook, so it is skipped here.
    _emit_in_transaction(target, {int(account_id): set(kinds)}, origin="", tab=None)


def _engine_of(connection: Connection) -> Engine:
    return connection.engine


def _emit_in_transaction(
    connection: Connection, pending: dict[int, set[str]], origin: str, tab: str | None
) -> None:
    backend = backend_for(_engine_of(connection))
    if backend == "postgres":
        for account_id, kinds in pending.items():
            connection.exec_driver_sql(
                "SELECT pg_notify(%(channel)s, %(payload)s)",
                {"channel": PG_CHANNEL, "payload": encode(account_id, kinds, tab)},
            )
    elif backend == "local":
        _write_change_log(connection, pending, origin)


_writes_since_prune = 0
_prune_lock = threading.Lock()


def _write_change_log(connection: Connection, pending: dict[int, set[str]], origin: str) -> None:
    global _writes_since_prune
    for account_id, kinds in pending.items():
        connection.execute(
            text("INSERT INTO change_log (account_id, kinds, origin) VALUES (:a, :k, :o)"),
            {"a": account_id, "k": ",".join(sorted(kinds)), "o": origin},
        )
    with _prune_lock:
        _writes_since_prune += 1
        due = _writes_since_prune >= _PRUNE_EVERY
        if due:
            _writes_since_prune = 0
    if due:  # the writer already holds SQLite's write lock: pruning here costs no extra transaction
        connection.execute(
            text("DELETE FROM change_log WHERE seq < (SELECT max(seq) FROM change_log) - :keep"),
            {"keep": CHANGE_LOG_KEEP},
        )


# Rows whose ORM writes announce themselves (subscriptions change in many small steps; the ledger
# and the jobs announce explicitly, including their Core-statement paths).
_WATCHED_TABLES = {
    # A login row changed (revoked, expiry moved, handed off): re-checked everywhere. A new login
    # changes nothing anybody shows (see _before_flush).
    "auth_session": SESSION,
    "subscription": SUBSCRIPTION,
    "invoice": PAYMENT,
    "payment_method": PAYMENT,
    "invoice_refund": PAYMENT,
    "payment_dispute": PAYMENT,
}


@event.listens_for(OrmSession, "before_flush")
def _before_flush(session: OrmSession, _flush_context: object, _instances: object) -> None:
    for is_new, group in ((True, session.new), (False, session.dirty), (False, session.deleted)):
        for obj in group:
            kind = _WATCHED_TABLES.get(getattr(obj, "__tablename__", ""))
            if kind is None or (kind == SESSION and is_new):
                continue
            account_id = getattr(obj, "account_id", None)
            if account_id is not None:
                announce(session, account_id, kind)


@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the outer commit sends everything
    pending = session.info.get(_INFO_KEY)
    if pending:
        # Taken here, before any after-commit write of the same thread can take it.
        tab = session.info[_TAB_KEY] = _take_acting_tab()
        _emit_in_transaction(session.connection(), pending, origin=ORIGIN, tab=tab)


CommitListener = Callable[[list["Change"]], None]
_commit_listeners: list[CommitListener] = []


def on_commit(listener: CommitListener) -> None:
    """Call `listener(changes)` in the committing thread right after each commit of THIS process
    that announced changes, before the notification travels: for in-process caches that must
    not outlive the commit (state/session_guard.py's live logins). Keep it quick; it must not
    raise or touch the database."""
    if listener not in _commit_listeners:
        _commit_listeners.append(listener)


def off_commit(listener: CommitListener) -> None:
    with contextlib.suppress(ValueError):
        _commit_listeners.remove(listener)


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: nothing is committed yet
    pending = session.info.pop(_INFO_KEY, None)
    tab = session.info.pop(_TAB_KEY, None)
    if not pending:
        return
    if _commit_listeners:
        changes = [Change(a, frozenset(k)) for a, k in pending.items()]
        for listener in list(_commit_listeners):
            try:
                listener(changes)
            except Exception:
                log.exception("commit listener failed")
    try:
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        backend = backend_for(engine)
        if backend == "local":
            _publish_local([Change(a, frozenset(k), tab) for a, k in pending.items()])
        elif backend == "redis":
            _publish_redis(engine, pending, tab)
    except Exception:  # the write is committed; a lost notification is recovered on reconnect
        log.exception("could not send a change notification")


@event.listens_for(OrmSession, "after_transaction_end")
def _after_transaction_end(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outer transaction ended without commit: drop its changes
        session.info.pop(_INFO_KEY, None)
        session.info.pop(_TAB_KEY, None)


_redis_clients: dict[str, Any] = {}


def _publish_redis(engine: Engine, pending: dict[int, set[str]], tab: str | None) -> None:
    url = redis_url()
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url)
    channel = redis_channel(engine)
    if len(pending) == 1:
        ((account_id, kinds),) = pending.items()
        client.publish(channel, encode(account_id, kinds, tab))
        return
    with client.pipeline(transaction=False) as pipe:
        for account_id, kinds in pending.items():
            pipe.publish(channel, encode(account_id, kinds, tab))
        pipe.execute()


# ------------------------------------------------------------------- in-process bus

_local_feeds: list[tuple[asyncio.AbstractEventLoop, ChangeFeed]] = []
_local_lock = threading.Lock()


def _publish_local(changes: list[Change]) -> None:
    with _local_lock:
        feeds = list(_local_feeds)
    for loop, feed in feeds:
        if loop.is_closed():
            continue
        with contextlib.suppress(RuntimeError):  # loop shutting down
            loop.call_soon_threadsafe(feed._deliver_many, changes)


# ------------------------------------------------------------------- read side

Subscriber = Callable[[Change], Awaitable[None] | None]
Resync = Callable[[], Awaitable[None] | None]


class ChangeFeed:
    """One per process: listens for changes and hands each to the subscribers."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or db.get_engine()  # (tests swap db.get_engine)
        self.backend = backend_for(self.engine)
        self._subscribers: list[Subscriber] = []
        self._resyncs: list[Resync] = []
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.listening = asyncio.Event()  # set while the listener is connected
        self.delivered = 0

    # -- subscriptions
    def subscribe(self, callback: Subscriber, on_resync: Resync | None = None) -> None:
        self._subscribers.append(callback)
        if on_resync is not None:
            self._resyncs.append(on_resync)

    def unsubscribe(self, callback: Subscriber) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    # -- life cycle
    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        if self.backend == "local":
            with _local_lock:
                _local_feeds.append((self._loop, self))
        runner = {
            "postgres": self._run_postgres,
            "redis": self._run_redis,
            "local": self._run_local,
        }[self.backend]
        self._task = asyncio.create_task(self._supervise(runner), name="workroom-change-feed")
        try:
            await asyncio.wait_for(self.listening.wait(), timeout=10)
        except TimeoutError:  # the database or Redis is down: keep trying in the background
            log.warning("change listener not connected yet; pages are re-read on load until it is")

    async def stop(self) -> None:
        with _local_lock:
            _local_feeds[:] = [(lp, f) for lp, f in _local_feeds if f is not self]
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.listening.clear()

    async def __aenter__(self) -> ChangeFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- delivery
    def _deliver_many(self, changes: list[Change]) -> None:
        for change in changes:
            self._deliver(change)

    def _deliver(self, change: Change | None) -> None:
        if change is None:
            return
        self.delivered += 1
        for callback in list(self._subscribers):
            try:
                result = callback(change)
                if asyncio.iscoroutine(result):
                    asyncio.ensure_future(result)
            except Exception:
                log.exception("change subscriber failed")

    async def _resync(self) -> None:
        for callback in list(self._resyncs):
            try:
                result = callback()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("change resync failed")

    async def _supervise(self, runner: Callable[[bool], Awaitable[None]]) -> None:
        """Keep the listener alive; after a reconnect tell subscribers to re-read once."""
        attempt = 0
        first = True
        while True:
            try:
                await runner(first)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  (a database or Redis restart)
                log.warning(
                    "change listener lost (%s: %s); reconnecting", exc.__class__.__name__, exc
                )
            self.listening.clear()
            first = False
            await asyncio.sleep(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)])
            attempt += 1

    async def _connected(self, first: bool) -> None:
        self.listening.set()
        if not first:
            await self._resync()

    # -- PostgreSQL: LISTEN on one connection
    async def _run_postgres(self, first: bool) -> None:
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"LISTEN {PG_CHANNEL}")
            await self._connected(first)
            async for notify in conn.notifies():
                self._deliver(decode(notify.payload))

    # -- Redis: SUBSCRIBE on one connection
    async def _run_redis(self, first: bool) -> None:
        client = aredis.Redis.from_url(redis_url())
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(redis_channel(self.engine))
            await self._connected(first)
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is not None and message.get("type") == "message":
                    self._deliver(decode(message["data"]))
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    # -- SQLite: in-process bus (see _publish_local) + one WAL check per process
    async def _run_local(self, first: bool) -> None:
        last_seq = await asyncio.to_thread(self._max_seq)
        wal = self._wal_path()
        last_stamp = _stamp(wal)
        await self._connected(first)
        while True:
            await asyncio.sleep(LOCAL_CHECK_SECONDS)
            stamp = _stamp(wal)
            if stamp == last_stamp and stamp is not None:
                continue  # nobody wrote to the database: no query
            last_stamp = stamp
            rows = await asyncio.to_thread(self._read_since, last_seq)
            for seq, account_id, kinds, origin in rows:
                last_seq = max(last_seq, seq)
                if origin == ORIGIN:
                    continue  # ours: already delivered over the in-process bus
                self._deliver(
                    Change(account_id, frozenset(k for k in kinds.split(",") if k in KINDS))
                )

    def _wal_path(self) -> str | None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return None
        return database + "-wal"

    def _max_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(text("SELECT coalesce(max(seq), 0) FROM change_log")).scalar() or 0
            )

    def _read_since(self, seq: int) -> list[tuple[int, int, str, str]]:
        with self.engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT seq, account_id, kinds, origin FROM change_log WHERE seq > :s ORDER BY seq"
                    ),
                    {"s": seq},
                ).all()
            ]


def _stamp(path: str | None) -> tuple | None:
    """What changes on every SQLite commit in WAL mode, read without SQL: the WAL file's inode,
    size and mtime, and the head of the shared WAL index (its transaction counter `iChange`,
    `mxFrame` and salts move on every commit, even when a reset WAL keeps its size)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
        head = os.pread(_wal_index_fd(path[: -len("-wal")] + "-shm"), 48, 0)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, head


# Descriptors of WAL index files, opened once and NEVER closed: closing any descriptor of a file
# drops every POSIX lock this process holds on it, SQLite's own WAL-index locks included, and
# another process could then write while this one holds SQLite's write lock: the way to corrupt
# a SQLite database that sqlite.org/howtocorrupt.html describes in 2.2. (Closing one after each
# check did exactly that: "database disk image is malformed" with several processes.) A file
# SQLite deleted and made again gets a new descriptor; the old one stays open.
_wal_index_fds: dict[str, tuple[int, int]] = {}  # path -> (inode, descriptor)
_wal_index_lock = threading.Lock()


def _wal_index_fd(shm_path: str) -> int:
    inode = os.stat(shm_path).st_ino
    with _wal_index_lock:
        known = _wal_index_fds.get(shm_path)
        if known is not None and known[0] == inode:
            return known[1]
        fd = os.open(shm_path, os.O_RDONLY)
        _wal_index_fds[shm_path] = (os.fstat(fd).st_ino, fd)
        return fd


# ------------------------------------------------------------------- the process's feed

_feed: ChangeFeed | None = None


async def process_feed() -> ChangeFeed:
    """The feed of this process (started on first use). The web app and the worker share it."""
    global _feed
    if _feed is None or _feed._loop is not asyncio.get_running_loop():
        feed = ChangeFeed()
        await feed.start()
        _feed = feed
    return _feed


async def stop_process_feed() -> None:
    global _feed
    feed, _feed = _feed, None
    if feed is not None:
        await feed.stop()
