"""Refunds, disputes and debt; low-balance alerts; receipts.

Wallets learn their debt (credits taken back for a refunded or disputed purchase
that were already spent) and the owner's low-balance threshold; ledger rows learn
the change to the debt they made; payments learn Stripe's refunded and disputed
totals, the receipt and the credits taken back; the refunds admins asked for are
kept with who asked and why. A charge is refunded at most once (a unique index).

Revision ID: wallet_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "wallet_0003"
down_revision = "wallet_0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_REFUND = sa.text("kind = 'refund'")


def upgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.add_column(sa.Column("debt", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("low_balance", sa.BigInteger, nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("low_balance_alerted", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.create_check_constraint("ck_wallets_debt_not_negative", "debt >= 0")
        batch.create_check_constraint(
            "ck_wallets_debt_leaves_nothing", "debt = 0 OR balance = held"
        )
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(
            sa.Column("debt_change", sa.BigInteger, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("debt_after", sa.BigInteger, nullable=False, server_default="0"))
        batch.drop_constraint("ck_ledger_amount_not_zero", type_="check")
        batch.create_check_constraint(
            "ck_ledger_moves_something", "amount <> 0 OR debt_change <> 0"
        )
        batch.create_check_constraint("ck_ledger_debt_after_not_negative", "debt_after >= 0")
    op.create_index(
        "ux_ledger_refund_of_charge",
        "ledger",
        ["reference"],
        unique=True,
        postgresql_where=_REFUND,
        sqlite_where=_REFUND,
    )
    with op.batch_alter_table("payments") as batch:
        for name in ("refunded_amount", "disputed_amount", "credits_reversed"):
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("dispute_id", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("receipt_url", sa.Text, nullable=False, server_default=""))
        batch.create_check_constraint(
            "ck_payments_reversed_in_range", "credits_reversed >= 0 AND credits_reversed <= credits"
        )
    op.create_index("ix_payments_payment_intent", "payments", ["payment_intent"])
    op.create_table(
        "payment_refunds",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("payment_id", sa.String(255), sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("admin_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_index("ix_payment_refunds_payment", "payment_refunds", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_payment_refunds_payment", "payment_refunds")
    op.drop_table("payment_refunds")
    op.drop_index("ix_payments_payment_intent", "payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint("ck_payments_reversed_in_range", type_="check")
        for name in (
            "receipt_url",
            "dispute_id",
            "credits_reversed",
            "disputed_amount",
            "refunded_amount",
        ):
            batch.drop_column(name)
    op.drop_index("ux_ledger_refund_of_charge", "ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_constraint("ck_ledger_debt_after_not_negative", type_="check")
        batch.drop_constraint("ck_ledger_moves_something", type_="check")
        batch.create_check_constraint("ck_ledger_amount_not_zero", "amount <> 0")
        batch.drop_column("debt_after")
        batch.drop_column("debt_change")
    with op.batch_alter_table("wallets") as batch:
        batch.drop_constraint("ck_wallets_debt_leaves_nothing", type_="check")
        batch.drop_constraint("ck_wallets_debt_not_negative", type_="check")
        batch.drop_column("low_balance_alerted")
        batch.drop_column("low_balance")
        batch.drop_column("debt")
