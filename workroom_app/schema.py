"""Create or upgrade the database schema: always through the alembic migrations,
so tests, the CLI and `make run` build exactly what production gets."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from workroom_app.settings import REPO_ROOT

ALEMBIC_DIR = REPO_ROOT / "alembic"


def alembic_config(url: str):
    from alembic.config import Config  # noqa: PLC0415  (alembic: only to migrate)

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on the database behind `engine`."""
    from alembic import command  # noqa: PLC0415  (alembic: only to migrate)

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
