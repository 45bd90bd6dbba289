"""Regenerate alembic/versions/0001_initial.py from workroom_app.models.

Only while nothing has shipped: after the first release, schema changes get
their own new migrations instead. Run: .venv/bin/python scripts/regen_initial_migration.py
"""

import tempfile
from pathlib import Path

from alembic import command

from workroom_app.schema import ALEMBIC_DIR, alembic_config

target = ALEMBIC_DIR / "versions" / "0001_initial.py"
target.unlink(missing_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001",
                     head="base")
generated = next((ALEMBIC_DIR / "versions").glob("0001_*.py"))
generated.rename(target)
print(f"wrote {target}")
