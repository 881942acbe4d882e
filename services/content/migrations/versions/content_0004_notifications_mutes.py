"""Notifications (stored per recipient; likes aggregated per post while unread) and
mutes (whose actions do not notify whom).

Revision ID: content_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0004"
down_revision = "content_0003"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("post_id", sa.String(36), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("aggregate_key", sa.String(80), nullable=True),
        sa.Column("read_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.UniqueConstraint("user_id", "aggregate_key", name="uq_notifications_aggregate"),
        sa.Index("ix_notifications_user_created", "user_id", "created_at", "id"),
        sa.Index("ix_notifications_user_unread", "user_id", "read_at"),
    )
    op.create_table(
        "mutes",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("muted_id", sa.String(64), primary_key=True),
        sa.Column("created_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mutes")
    op.drop_table("notifications")
