"""Usage summaries: ledger rows and payments by time (GROUP BY day over a window).

Revision ID: wallet_0006
Revises: wallet_0003
"""

from alembic import op

revision = "wallet_0006"
down_revision = "wallet_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_created_at", "ledger", ["created_at"])
    op.create_index("ix_ledger_user_created_at", "ledger", ["user_id", "created_at"])
    op.create_index("ix_payments_paid_at", "payments", ["paid_at"])


def downgrade() -> None:
    op.drop_index("ix_payments_paid_at", "payments")
    op.drop_index("ix_ledger_user_created_at", "ledger")
    op.drop_index("ix_ledger_created_at", "ledger")
