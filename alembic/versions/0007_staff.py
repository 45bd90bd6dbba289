"""Staff operations: roles (support, finance, admin), an append-only audit
trail, invoice refunds and Stripe disputes.

Every existing "staff" account becomes "admin" (the old single staff role
could do everything).

Revision ID: 0007_staff
Revises: 0002
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_staff"
down_revision = "0006_media"
branch_labels = None
depends_on = None

MESSAGE = "staff_audit is append-only: write a new row instead"


def upgrade() -> None:
    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_staff_audit_account_id", "staff_audit", ["account_id", "id"])
    op.create_index("ix_staff_audit_actor_id", "staff_audit", ["actor_id"])
    op.create_index("ix_staff_audit_action", "staff_audit", ["action"])

    op.create_table(
        "invoice_refund",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoice.id"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("gateway", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("gateway_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("credits_removed", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("completed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_invoice_refund_invoice_id", "invoice_refund", ["invoice_id"])
    op.create_index("ix_invoice_refund_account_id", "invoice_refund", ["account_id"])
    op.create_index("ix_invoice_refund_status", "invoice_refund", ["status"])
    op.create_index("ix_invoice_refund_gateway_ref", "invoice_refund", ["gateway_ref"])

    op.create_table(
        "payment_dispute",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=128), primary_key=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("charge_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_payment_dispute_account_id", "payment_dispute", ["account_id"])
    op.create_index("ix_payment_dispute_invoice_id", "payment_dispute", ["invoice_id"])

    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER staff_audit_no_{verb.lower()} BEFORE {verb} ON staff_audit "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION staff_audit_refuse_change() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER staff_audit_append_only BEFORE UPDATE OR DELETE ON staff_audit "
            "FOR EACH ROW EXECUTE FUNCTION staff_audit_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER staff_audit_no_truncate BEFORE TRUNCATE ON staff_audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION staff_audit_refuse_change()"
        )

    # The overview's date-range reads across accounts.
    op.create_index("ix_ledger_created_at", "ledger_entry", ["created_at"])
    op.create_index("ix_job_created_at", "generation_job", ["created_at"])
    op.create_index("ix_invoice_created_at", "invoice", ["created_at"])

    # The old single staff role could do everything: it becomes admin.
    op.execute("UPDATE account SET role = 'admin' WHERE role = 'staff'")


def downgrade() -> None:
    op.execute("UPDATE account SET role = 'staff' WHERE role IN ('support', 'finance', 'admin')")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS staff_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS staff_audit_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS staff_audit_no_truncate ON staff_audit")
        op.execute("DROP TRIGGER IF EXISTS staff_audit_append_only ON staff_audit")
        op.execute("DROP FUNCTION IF EXISTS staff_audit_refuse_change()")
    op.drop_index("ix_invoice_created_at", table_name="invoice")
    op.drop_index("ix_job_created_at", table_name="generation_job")
    op.drop_index("ix_ledger_created_at", table_name="ledger_entry")
    op.drop_table("payment_dispute")
    op.drop_table("invoice_refund")
    op.drop_table("staff_audit")
