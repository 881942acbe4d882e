"""Account summaries: the UTC days each account signed in or refreshed a session
(user_activity), and accounts by creation time.

Revision ID: auth_0007
Revises: auth_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0007"
down_revision = "auth_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_activity",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("day", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name="pk_user_activity"),
    )
    op.create_index("ix_user_activity_day", "user_activity", ["day"])


def downgrade() -> None:
    op.drop_index("ix_user_activity_day", "user_activity")
    op.drop_table("user_activity")
