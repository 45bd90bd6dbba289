"""Payments the card holder must confirm (3-D Secure), and off-session Stripe payments under way.

Revision ID: 0010_pay
Revises: 0009_rollup
"""

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision = "0010_pay"
down_revision = "0009_rollup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "payment_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", text(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", text(length=16), nullable=False),
        sa.Column("charge_key", text(length=200), nullable=False),
        sa.Column("gateway", text(length=16), nullable=False),
        sa.Column("gateway_ref", text(length=128), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", text(length=3), nullable=False),
        sa.Column("description", text(length=300), nullable=False),
        sa.Column("card_brand", text(length=32), nullable=True),
        sa.Column("card_last4", text(length=4), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("status", text(length=16), nullable=False),
        sa.Column("confirm_url", text(length=500), nullable=True),
        sa.Column("return_path", text(length=200), nullable=False),
        sa.Column("failure_reason", text(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
        sa.UniqueConstraint("charge_key"),
    )
    op.create_index("ix_payment_confirmation_gateway_ref", "payment_confirmation", ["gateway_ref"])
    op.create_index(
        "ix_payment_confirmation_open", "payment_confirmation", ["status", "expires_at"]
    )
    op.create_index(
        "ix_payment_confirmation_account", "payment_confirmation", ["account_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_payment_confirmation_account", table_name="payment_confirmation")
    op.drop_index("ix_payment_confirmation_open", table_name="payment_confirmation")
    op.drop_index("ix_payment_confirmation_gateway_ref", table_name="payment_confirmation")
    op.drop_table("payment_confirmation")
