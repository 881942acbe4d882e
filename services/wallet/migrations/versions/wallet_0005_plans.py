"""Plans: users' Stripe subscriptions and the invoices whose allowance was granted.

Revision ID: wallet_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "wallet_0005"
down_revision = "wallet_0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("wallets.user_id"), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_period_start", _TIME, nullable=True),
        sa.Column("current_period_end", _TIME, nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("stripe_updated", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ix_subscriptions_user_updated", "subscriptions", ["user_id", "updated_at"])
    op.create_table(
        "subscription_invoices",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column(
            "subscription_id", sa.String(255), sa.ForeignKey("subscriptions.id"), nullable=False
        ),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("period_end", _TIME, nullable=False),
        sa.Column("granted_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("subscription_invoices")
    op.drop_index("ix_subscriptions_user_updated", "subscriptions")
    op.drop_table("subscriptions")
