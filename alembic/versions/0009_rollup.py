"""Staff overview rollups: per closed UTC day sums, and an index for unlimited jobs.

Revision ID: 0009_rollup
Revises: 0004_live
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009_rollup"
down_revision = "0004_live"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_rollup_day",
        sa.Column("series", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("filled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("series", "day"),
    )
    op.create_table(
        "staff_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("bucket", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("series", "day", "key", "bucket", name="uq_staff_rollup"),
    )
    op.create_index("ix_staff_rollup_read", "staff_rollup", ["series", "day", "key", "bucket", "value"])
    op.create_index("ix_job_unlimited_created", "generation_job", ["unlimited", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_job_unlimited_created", table_name="generation_job")
    op.drop_index("ix_staff_rollup_read", table_name="staff_rollup")
    op.drop_table("staff_rollup")
    op.drop_table("staff_rollup_day")
