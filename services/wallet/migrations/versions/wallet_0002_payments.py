"""Stripe payments: each user's Stripe customer, the Checkout Sessions klik started
(credit-pack purchases) and the Stripe events it has handled.

Revision ID: wallet_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "wallet_0002"
down_revision = "wallet_0001"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stripe_customers",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("wallets.user_id"), nullable=False),
        sa.Column("pack_id", sa.String(64), nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("payment_intent", sa.String(255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("paid_at", _TIME, nullable=True),
        sa.CheckConstraint("credits > 0", name="ck_payments_credits_positive"),
        sa.CheckConstraint("status IN ('open', 'paid', 'expired')", name="ck_payments_status"),
    )
    op.create_index("ix_payments_user_created", "payments", ["user_id", "created_at"])
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_index("ix_payments_user_created", "payments")
    op.drop_table("payments")
    op.drop_table("stripe_customers")
