"""The wallet's tables: wallets, the append-only ledger, holds, idempotency keys.

Written out rather than `metadata.create_all()`, so this revision keeps creating
exactly this schema whatever later revisions change in store.py.

Revision ID: wallet_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "wallet_0001"
down_revision = None
branch_labels = ("wallet",)
depends_on = None

_TIME = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("held", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("closed_at", _TIME, nullable=True),
        sa.CheckConstraint("held >= 0", name="ck_wallets_held_not_negative"),
        sa.CheckConstraint("balance - held >= 0", name="ck_wallets_available_not_negative"),
    )
    op.create_table(
        "ledger",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("wallets.user_id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("correlation_id", sa.String(36), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.CheckConstraint("amount <> 0", name="ck_ledger_amount_not_zero"),
        sa.CheckConstraint("balance_after >= 0", name="ck_ledger_balance_after_not_negative"),
    )
    op.create_index("ix_ledger_user_seq", "ledger", ["user_id", "seq"])
    op.create_table(
        "holds",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("wallets.user_id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("captured_amount", sa.BigInteger, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_holds_amount_positive"),
        sa.CheckConstraint(
            "captured_amount >= 0 AND captured_amount <= amount",
            name="ck_holds_captured_in_range",
        ),
        sa.CheckConstraint(
            "status IN ('open', 'captured', 'released', 'expired')", name="ck_holds_status"
        ),
    )
    op.create_index(
        "ix_holds_open_expiry",
        "holds",
        ["expires_at"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
    op.create_index(
        "ix_holds_open_user", "holds", ["user_id"], postgresql_where=_OPEN, sqlite_where=_OPEN
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("scope", "operation", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("holds")
    op.drop_table("ledger")
    op.drop_table("wallets")
