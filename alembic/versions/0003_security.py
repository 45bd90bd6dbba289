"""Security: confirmed and disabled accounts, log-in hand-offs, one trial per mailbox.

Revision ID: 0003_security
Revises: 0002
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003_security"
down_revision = "0008_packs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("disabled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # Accounts that existed before this migration got their trial at sign-up: count their
    # addresses as confirmed so nothing changes for them.
    op.execute("UPDATE account SET email_confirmed_at = created_at WHERE email_confirmed_at IS NULL")
    op.create_table(
        "trial_claim",
        sa.Column("canonical_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.PrimaryKeyConstraint("canonical_email"),
    )
    with op.batch_alter_table("trial_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trial_claim_account_id"), ["account_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trial_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trial_claim_account_id"))
    op.drop_table("trial_claim")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_column("pending_until")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("email_confirmed_at")
