"""Failed payment attempts take no invoice number: invoice.seq and invoice.number
become nullable (NULL for a failed attempt), so numbers stay gapless over paid
invoices. The unique (account, seq) and (account, number) constraints still hold:
NULLs never collide.

Revision ID: 0005_ux
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_ux"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoice") as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("number", existing_type=sa.String(length=32), nullable=True)
    # Earlier failed attempts gave their number back: none is shown or served.
    op.execute("UPDATE invoice SET seq = NULL, number = NULL WHERE status = 'failed'")


def downgrade() -> None:
    # Number the unnumbered failed attempts after the account's last number, so
    # the NOT NULL constraint can come back.
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, account_id FROM invoice WHERE seq IS NULL ORDER BY id")
    ).all()
    for invoice_id, account_id in rows:
        top = bind.execute(
            sa.text("SELECT COALESCE(MAX(seq), 0) FROM invoice WHERE account_id = :a"), {"a": account_id}
        ).scalar()
        seq = int(top) + 1
        bind.execute(
            sa.text("UPDATE invoice SET seq = :s, number = :n WHERE id = :i"),
            {"s": seq, "n": f"WR-{account_id}-{seq:04d}", "i": invoice_id},
        )
    with op.batch_alter_table("invoice") as batch:
        batch.alter_column("number", existing_type=sa.String(length=32), nullable=False)
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
