"""Regenerate alembic/versions/0001_initial.py from workroom_app.models.

Only while nothing has shipped: after the first release, schema changes get
their own new migrations instead. Run: .venv/bin/python scripts/regen_initial_migration.py

Autogenerate runs in a scratch copy of the alembic folder with no versions, so
the later hand-written migrations (0002, which revises 0001) are not disturbed.
"""

import shutil
import tempfile
from pathlib import Path

from alembic import command
from workroom_app.schema import ALEMBIC_DIR, alembic_config

target = ALEMBIC_DIR / "versions" / "0001_initial.py"
with tempfile.TemporaryDirectory() as tmp:
    scratch = Path(tmp) / "alembic"
    shutil.copytree(ALEMBIC_DIR, scratch, ignore=shutil.ignore_patterns("versions", "__pycache__"))
    (scratch / "versions").mkdir()
    cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    cfg.set_main_option("script_location", str(scratch))
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    generated = next((scratch / "versions").glob("0001_*.py"))
    shutil.copyfile(generated, target)
print(f"wrote {target}")
