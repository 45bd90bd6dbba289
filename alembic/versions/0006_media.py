"""Generation jobs can produce several files (N images: N files): generation_job.output_count.

Revision ID: 0006_media
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_media"
down_revision = "0005_ux"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite adds the column the same way, and drops it by copying the table.
    with op.batch_alter_table("generation_job") as batch:
        batch.add_column(sa.Column("output_count", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("generation_job") as batch:
        batch.drop_column("output_count")
