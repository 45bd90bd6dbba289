"""Credits users can plan with: alert settings (and auto top-up) and in-app alerts.

and "report a broken result" (result_report).

Revision ID: 0008_packs
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0008_packs"
down_revision = "0007_staff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_settings",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("low_balance_threshold", sa.Integer(), nullable=True),
        sa.Column("email_low_balance", sa.Boolean(), nullable=False),
        sa.Column("email_credits_expiring", sa.Boolean(), nullable=False),
        sa.Column("email_payment_failed", sa.Boolean(), nullable=False),
        sa.Column("email_plan_ended", sa.Boolean(), nullable=False),
        sa.Column("auto_top_up", sa.Boolean(), nullable=False),
        sa.Column("top_up_threshold", sa.Integer(), nullable=False),
        sa.Column("top_up_pack", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("top_up_monthly_cap", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "account_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("dedupe_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("toasted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("read_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("account_alert", schema=None) as batch_op:
        batch_op.create_index("ix_account_alert_account_id_desc", ["account_id", "id"], unique=False)
    op.create_table(
        "result_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("auto_refunded", sa.Boolean(), nullable=False),
        sa.Column("refund_entry_id", sa.Integer(), nullable=True),
        sa.Column("staff_note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["generation_job.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id"),
    )
    with op.batch_alter_table("result_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_result_report_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_result_report_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("result_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_result_report_status"))
        batch_op.drop_index(batch_op.f("ix_result_report_account_id"))
    op.drop_table("result_report")
    with op.batch_alter_table("account_alert", schema=None) as batch_op:
        batch_op.drop_index("ix_account_alert_account_id_desc")
    op.drop_table("account_alert")
    op.drop_table("alert_settings")
