"""The one source of "now" for billing and generation.

Real time plus an offset that the demo command `workroom clock advance` stores
in the database (so the app, the worker and the CLI agree), or a fixed time
that tests pin with `pinned()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from workroom_app import db
from workroom_app.models import AppSetting

OFFSET_KEY = "clock_offset_seconds"
_CACHE_SECONDS = 1.0

_lock = threading.Lock()
_pinned: datetime | None = None
_cached_offset: tuple[float, float] = (0.0, -1e9)  # (offset seconds, read at monotonic)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    """Aware UTC now (SQLModel stores aware datetimes, in UTC)."""
    if _pinned is not None:
        return _pinned
    return _utcnow() + timedelta(seconds=_offset_seconds())


def _offset_seconds() -> float:
    global _cached_offset
    offset, read_at = _cached_offset
    if time.monotonic() - read_at < _CACHE_SECONDS:
        return offset
    offset = read_offset()
    _cached_offset = (offset, time.monotonic())
    return offset


def read_offset(engine: Engine | None = None) -> float:
    try:
        with Session(engine or db.get_engine()) as session:
            row = session.get(AppSetting, OFFSET_KEY)
            return float(row.value) if row else 0.0
    except (SQLAlchemyError, ValueError):  # no schema yet (before migrations): real time
        return 0.0


def advance(days: float, engine: Engine | None = None) -> datetime:
    """Move the shared clock forward (demos and `workroom clock advance`)."""
    global _cached_offset
    if days < 0:
        raise ValueError("the clock only moves forward")
    with db.write_session(engine or db.get_engine()) as session:
        row = session.get(AppSetting, OFFSET_KEY)
        current = float(row.value) if row else 0.0
        new = current + days * 86400
        if row:
            row.value = str(new)
        else:
            session.add(AppSetting(key=OFFSET_KEY, value=str(new)))
    _cached_offset = (new, time.monotonic())
    return _utcnow() + timedelta(seconds=new)


def set_pinned(value: datetime | None) -> None:
    global _pinned
    if value is not None and value.utcoffset() is None:
        raise ValueError("pin the clock with an aware datetime (tzinfo=UTC)")
    with _lock:
        _pinned = value


@contextmanager
def pinned(value: datetime) -> Iterator[None]:
    """Tests: freeze now() at `value` (an aware UTC datetime) for the block."""
    previous = _pinned
    set_pinned(value)
    try:
        yield
    finally:
        set_pinned(previous)
