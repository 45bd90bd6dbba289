"""Exactly one billing scheduler (renewals, retries, receipts) per deployment.

Every `workroom worker` (and an in-app worker) may run the scheduler; only the holder of this
lock does. PostgreSQL: a session-level advisory lock held on one dedicated connection for as
long as the process lives (it is released by the server the moment that connection or the
process dies, so another worker takes over at its next try). SQLite (one machine): an exclusive
`flock` on a file beside the database, released by the kernel when the process ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from workroom_app.settings import REPO_ROOT

log = logging.getLogger("workroom.scheduler")

# pg_advisory_lock key: any constant unique to this purpose in the database.
ADVISORY_KEY = 0x57524B5343  # "WRKSC"


class SchedulerLock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        """Blocking (a thread): True when this process holds the lock (now or already)."""
        if self.engine.dialect.name == "postgresql":
            return self._try_postgres()
        return self._try_file()

    def _try_postgres(self) -> bool:
        if self._conn is not None:
            try:  # still connected (a dropped connection has lost the lock)
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001
                log.warning("scheduler lock connection lost; trying to take the lock again")
                self._close_conn()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
            )
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("this process runs the billing scheduler (advisory lock %s)", ADVISORY_KEY)
        return True

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # never return a connection holding the lock to the pool
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def _lock_path(self) -> str:
        database = self.engine.url.database or ""
        if not database or database == ":memory:":
            return str(REPO_ROOT / "var" / "scheduler.lock")
        return database + ".scheduler.lock"

    def _try_file(self) -> bool:
        if self._fd is not None:
            return True
        path = self._lock_path()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("this process runs the billing scheduler (lock file %s)", path)
        return True

    def release(self) -> None:
        if self._conn is not None:
            # A connection already gone has released the lock with it.
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            self._close_conn()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
