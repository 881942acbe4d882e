"""Plans: the newest `wallet.plan_changed` applied to each account (plan_states),
so an older one delivered later does not undo the role `premium`.

Revision ID: auth_0006
Revises: auth_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0006"
down_revision = "auth_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_states",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("premium", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plan_states")
