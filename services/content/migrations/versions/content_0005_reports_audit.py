"""Moderation: users' reports of posts and comments, and the audit of every
moderator action (who, what, when, why).

Revision ID: content_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0005"
down_revision = "content_0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("reporter_id", sa.String(64), nullable=False),
        sa.Column("target_kind", sa.String(10), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Index("ix_reports_status_created", "status", "created_at", "id"),
        sa.Index("ix_reports_target", "target_kind", "target_id", "status"),
    )
    op.create_table(
        "moderation_actions",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("moderator_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("target_kind", sa.String(10), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("moderation_actions")
    op.drop_table("reports")
