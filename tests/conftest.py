"""Shared fixtures: a fresh database per test, on SQLite and (where reachable)
PostgreSQL, built by the real migrations."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from workroom_app import db
from workroom_app.billing import clock
from workroom_app.schema import upgrade

POSTGRES_URL = os.environ.get("WORKROOM_TEST_POSTGRES_URL", "")


def _postgres_admin_url() -> str | None:
    if not POSTGRES_URL:
        return None
    url = POSTGRES_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def postgres_skip_reason() -> str | None:
    url = _postgres_admin_url()
    if url is None:
        return "WORKROOM_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    try:
        eng = create_engine(url)
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
    except Exception as exc:  # server absent or refused
        return f"PostgreSQL at WORKROOM_TEST_POSTGRES_URL is not reachable: {exc.__class__.__name__}"
    return None


def make_sqlite_engine(tmp_path) -> Engine:
    return db.make_engine(f"sqlite:///{tmp_path / 'test.db'}")


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = make_sqlite_engine(tmp_path)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A brand-new PostgreSQL database for this test, dropped afterwards."""
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    admin_url = _postgres_admin_url()
    name = f"wr_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = admin.url.set(database=name)
    engine = db.make_engine(base.render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request) -> Iterator[Engine]:
    """Run the test on both engines."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
    else:
        yield request.getfixturevalue("pg_engine")


@pytest.fixture(autouse=True)
def _unpinned_clock() -> Iterator[None]:
    yield
    clock.set_pinned(None)
