"""The alembic migrations build, from an empty database, exactly the schema
the models describe, on SQLite and PostgreSQL, and downgrade back to empty."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import workroom_app.models  # noqa: F401  (registers every table)
from alembic import command
from workroom_app.schema import alembic_config, upgrade


def _differences(engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, SQLModel.metadata)


def _ledger_triggers(engine) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger_entry'"
        if engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid = 'ledger_entry'::regclass"
    )
    with engine.connect() as conn:
        return set(conn.exec_driver_sql(sql).scalars())


def test_migrations_from_empty_match_the_models(engine):
    # The `engine` fixture has already run every migration on an empty database.
    assert _differences(engine) == []
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert _ledger_triggers(engine)  # append-only (behaviour tested in test_ledger.py)


def test_upgrade_twice_is_a_no_op(engine):
    upgrade(engine)
    assert _differences(engine) == []


def test_downgrade_to_base_and_up_again(engine):
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert _differences(engine) == []
    assert _ledger_triggers(engine)
