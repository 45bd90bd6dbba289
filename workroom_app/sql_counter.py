"""Benchmark aid: count the SQL statements this process sends (WORKROOM_SQL_COUNT_DIR).

With the setting on, every engine counts its statements and a daemon thread writes this process's
total to `<dir>/<pid>` twice a second, so benchmarks/bench_live.py can report statements per
second of a running server (idle tabs should cause none). Off by default: no cost.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

_counter = itertools.count()
_total = 0
_writer: threading.Thread | None = None
_lock = threading.Lock()


def attach(engine: Engine, directory: str) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        global _total
        _total = next(_counter) + 1

    _start_writer(Path(directory))


def _start_writer(directory: Path) -> None:
    global _writer
    with _lock:
        if _writer is not None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / str(os.getpid())

        def write() -> None:
            while True:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(str(_total))
                os.replace(tmp, path)
                time.sleep(0.5)

        _writer = threading.Thread(target=write, name="workroom-sql-counter", daemon=True)
        _writer.start()


def read_total(directory: str | Path) -> int:
    """The statements sent so far by every process that wrote into `directory`."""
    total = 0
    for path in Path(directory).glob("[0-9]*"):
        if path.suffix:
            continue
        try:
            total += int(path.read_text() or 0)
        except (OSError, ValueError):
            continue
    return total
