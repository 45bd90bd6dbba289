"""Shared fixtures: a fresh database per test, on SQLite and (where reachable)
PostgreSQL, built by the real migrations."""

from __future__ import annotations

import functools
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from tests.support.fixtures import (  # noqa: F401  (fixtures for every test)
    app_db,
    fast_hashing,
    pg_app_db,
    stripe_world,
)
from workroom_app import db
from workroom_app.billing import clock
from workroom_app.schema import upgrade
from workroom_app.settings import get_settings

POSTGRES_URL = os.environ.get("WORKROOM_TEST_POSTGRES_URL", "")


def _postgres_admin_url() -> str | None:
    if not POSTGRES_URL:
        return None
    url = POSTGRES_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@functools.lru_cache(maxsize=1)
def postgres_skip_reason() -> str | None:
    url = _postgres_admin_url()
    if url is None:
        return (
            "WORKROOM_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    try:
        eng = create_engine(url)
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
    except (OSError, ImportError, SQLAlchemyError) as exc:  # server absent or refused, no driver
        return (
            f"PostgreSQL at WORKROOM_TEST_POSTGRES_URL is not reachable: {exc.__class__.__name__}"
        )
    return None


def make_sqlite_engine(tmp_path) -> Engine:
    return db.make_engine(f"sqlite:///{tmp_path / 'test.db'}")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """Migrations run once per test session; each test gets a copy of the result."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_engine(tmp_path, _sqlite_template) -> Iterator[Engine]:
    target = tmp_path / "test.db"
    with sqlite3.connect(_sqlite_template) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    engine = make_sqlite_engine(tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str | None]:
    """One migrated database per test session, dropped at the end. Tests share
    it and are isolated by emptying every table after each test (creating a
    database per test costs 1-2 s here)."""
    if postgres_skip_reason():
        yield None
        return
    admin = create_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"wr_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    try:
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_postgres(url: str) -> None:
    """Empty every table. session_replication_role=replica switches off the
    append-only triggers for this cleanup connection only."""
    cleaner = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with cleaner.connect() as conn:
            conn.execute(text("SET session_replication_role = replica"))
            tables = (
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
                .scalars()
                .all()
            )
            if tables:
                joined = ", ".join(f'"{t}"' for t in tables)
                conn.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
    finally:
        cleaner.dispose()


@pytest.fixture
def pg_engine(_postgres_database) -> Iterator[Engine]:
    """The session's PostgreSQL database, empty at the start of the test."""
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    engine = db.make_engine(_postgres_database)
    try:
        yield engine
    finally:
        engine.dispose()
        _empty_postgres(_postgres_database)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request) -> Iterator[Engine]:
    """Run the test on both engines."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
    else:
        yield request.getfixturevalue("pg_engine")


@pytest.fixture(autouse=True)
def _fresh_settings() -> None:
    """Settings are cached per process: each test reads them from its own environment, never
    from what an earlier test (a database URL it pointed at its own file) left behind."""
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _unpinned_clock() -> Iterator[None]:
    yield
    clock.set_pinned(None)


@pytest.fixture(scope="session", autouse=True)
def _test_media_dir(tmp_path_factory) -> Iterator[None]:
    """Files written by tests (uploads, renders, the seeded demo history's media) go to a
    temporary folder, never into the checkout's var/media. Tests that need their own folder
    still set WORKROOM_MEDIA_DIR themselves."""
    old = os.environ.get("WORKROOM_MEDIA_DIR")
    os.environ["WORKROOM_MEDIA_DIR"] = str(tmp_path_factory.mktemp("media"))
    get_settings.cache_clear()
    yield
    if old is None:
        os.environ.pop("WORKROOM_MEDIA_DIR", None)
    else:
        os.environ["WORKROOM_MEDIA_DIR"] = old
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_alert_cache() -> Iterator[None]:
    """Account ids repeat between test databases: no test may see another's thresholds."""
    from workroom_app.billing import alerts

    alerts.forget_everything()
    yield
    alerts.forget_everything()


@pytest.fixture(autouse=True)
def _fresh_security_state() -> Iterator[None]:
    """Rate-limit counters, the failed-event log budget and the signing secret are per process:
    each test starts with none."""
    from workroom_app.security import event_failures, rate_limits, signing

    rate_limits.reset()
    event_failures.reset()
    signing.reset_cache()
    yield
    rate_limits.reset()
    signing.reset_cache()
