"""Follows: who follows whom, for followers/following lists and the following feed.

Revision ID: content_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0003"
down_revision = "content_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.String(64), primary_key=True),
        sa.Column("followee_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_follows_followee", "followee_id", "created_at", "follower_id"),
        sa.Index("ix_follows_follower", "follower_id", "created_at", "followee_id"),
    )


def downgrade() -> None:
    op.drop_table("follows")
