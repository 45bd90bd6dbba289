"""Fixtures for tests that run the app itself (its states, its HTTP routes): the database the
app's code reaches through db.get_engine. tests/conftest.py makes them available everywhere."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from tests.support.factories import NOW
from tests.support.stripe_world import StripeWorld, make_world
from workroom_app import db
from workroom_app import settings as settings_module
from workroom_app.billing import accounts, clock, payments

# The real cached function, even while a test has monkeypatched settings.get_settings.
from workroom_app.settings import get_settings

# `@BOTH_ENGINES` on a test that uses `app_db` runs it on SQLite and on PostgreSQL.
BOTH_ENGINES = pytest.mark.parametrize("app_db", ["sqlite", "postgres"], indirect=True)


def serve_database(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    """Make every get_engine() of the app's code answer `engine`, however the module imported
    it (`db.get_engine` or `from workroom_app.db import get_engine`): the configured database
    URL is the engine's, and the engine is the one cached for that URL."""
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("WORKROOM_DATABASE_URL", url)
    monkeypatch.setitem(db._engines, url, engine)
    monkeypatch.setattr(db, "get_engine", lambda url=None: engine)
    get_settings.cache_clear()


def _serve(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[Engine]:
    serve_database(monkeypatch, engine)
    # Uploads and renders of this test in a folder of its own.
    monkeypatch.setenv("WORKROOM_MEDIA_DIR", str(tmp_path / "media"))
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()


@pytest.fixture
def app_db(request, monkeypatch, tmp_path) -> Iterator[Engine]:
    """The app's database: SQLite, or each engine with `@BOTH_ENGINES`."""
    kind = getattr(request, "param", "sqlite")
    engine = request.getfixturevalue("sqlite_engine" if kind == "sqlite" else "pg_engine")
    yield from _serve(engine, monkeypatch, tmp_path)


@pytest.fixture
def pg_app_db(pg_engine, monkeypatch, tmp_path) -> Iterator[Engine]:
    """The app's database on PostgreSQL only (skipped without a server)."""
    yield from _serve(pg_engine, monkeypatch, tmp_path)


@pytest.fixture
def fast_hashing(monkeypatch) -> None:
    """For tests where nobody logs in with a password: skip argon2's deliberate slowness."""
    monkeypatch.setattr(accounts, "hash_password", lambda password: "argon2-not-needed")


@pytest.fixture
def stripe_world(app_db, monkeypatch) -> StripeWorld:
    """The app in Stripe mode (settings.payment_gateway == "stripe") against the in-process
    stand-in, its prices made at NOW."""
    with clock.pinned(NOW):
        world = make_world(app_db)
    settings = world.gateway.settings.model_copy(
        update={
            "public_url": "https://workroom.test",
            "database_url": app_db.url.render_as_string(hide_password=False),
        }
    )
    monkeypatch.setattr(settings_module, "get_settings", lambda: settings)
    monkeypatch.setattr(payments, "_factories", {"stripe": lambda _settings: world.gateway})
    monkeypatch.setattr(payments, "_instances", {})
    return world
