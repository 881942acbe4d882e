"""Credit lots: the credits on a balance, lot by lot, with an optional expiry.

`lots` holds what each credit row brought (its bucket: purchase, allowance,
grant or bonus), what is left of it, what open holds reserved of it and when the
rest expires; `hold_lots` what each hold reserved of each lot (and what its
capture consumed). Existing wallets get one non-expiring `grant` lot holding
their current balance (reserved: what their open holds hold), and each open hold
its reservation of that lot, so sum(remaining) == balance and sum(reserved) ==
held from the start.

Revision ID: wallet_0004
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "wallet_0004"
down_revision = "wallet_0003"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_LIVE = sa.text("remaining > 0")
_DUE = sa.text("remaining > reserved AND expires_at IS NOT NULL")


def upgrade() -> None:
    lots = op.create_table(
        "lots",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), sa.ForeignKey("wallets.user_id"), nullable=False),
        sa.Column("bucket", sa.String(10), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("entry_id", sa.String(36), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_lots_amount_positive"),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= remaining AND remaining <= amount",
            name="ck_lots_in_range",
        ),
        sa.CheckConstraint(
            "bucket IN ('purchase', 'allowance', 'grant', 'bonus')", name="ck_lots_bucket"
        ),
    )
    op.create_index(
        "ix_lots_live_user", "lots", ["user_id"], postgresql_where=_LIVE, sqlite_where=_LIVE
    )
    op.create_index("ix_lots_due", "lots", ["expires_at"], postgresql_where=_DUE, sqlite_where=_DUE)
    hold_lots = op.create_table(
        "hold_lots",
        sa.Column("hold_id", sa.String(36), sa.ForeignKey("holds.id"), nullable=False),
        sa.Column("lot_id", sa.String(36), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("captured", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("hold_id", "lot_id", name="pk_hold_lots"),
        sa.CheckConstraint("amount > 0", name="ck_hold_lots_amount_positive"),
        sa.CheckConstraint("captured >= 0 AND captured <= amount", name="ck_hold_lots_captured"),
    )
    bind = op.get_bind()
    wallets = bind.execute(
        sa.text("SELECT user_id, balance, held, updated_at FROM wallets WHERE balance > 0")
    ).all()
    made = {row.user_id: str(uuid.uuid4()) for row in wallets}
    if wallets:
        op.bulk_insert(
            lots,
            [
                {
                    "id": made[row.user_id],
                    "user_id": row.user_id,
                    "bucket": "grant",
                    "amount": row.balance,
                    "remaining": row.balance,
                    "reserved": row.held,
                    "expires_at": None,
                    "reference": "wallet_0004",
                    "entry_id": "",
                    "created_at": row.updated_at,
                }
                for row in wallets
            ],
        )
    opened = bind.execute(
        sa.text("SELECT id, user_id, amount FROM holds WHERE status = 'open'")
    ).all()
    reservations = [
        {"hold_id": h.id, "lot_id": made[h.user_id], "amount": h.amount, "captured": 0}
        for h in opened
        if h.user_id in made
    ]
    if reservations:
        op.bulk_insert(hold_lots, reservations)


def downgrade() -> None:
    op.drop_table("hold_lots")
    op.drop_index("ix_lots_due", "lots")
    op.drop_index("ix_lots_live_user", "lots")
    op.drop_table("lots")
