"""The content tables: posts, assets, chats and their messages, lessons, job links.

Written out rather than `metadata.create_all()`, so this revision keeps creating
exactly this schema whatever later revisions change in store.py.

Revision ID: content_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0001"
down_revision = None
branch_labels = ("content",)
depends_on = None

_TIME = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("asset_ids", sa.Text, nullable=False),
        sa.Column("visibility", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("hidden_reason", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("published_at", _TIME, nullable=True),
        sa.Column("deleted_at", _TIME, nullable=True),
    )
    op.create_index("ix_posts_feed", "posts", ["status", "visibility", "published_at", "id"])
    op.create_index("ix_posts_author_feed", "posts", ["author_id", "published_at", "id"])
    op.create_table(
        "assets",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("mime_type", sa.String(100), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_index("ix_assets_owner_seq", "assets", ["owner_id", "seq"])
    op.create_table(
        "chats",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("deleted_at", _TIME, nullable=True),
    )
    op.create_index("ix_chats_owner_activity", "chats", ["owner_id", "updated_at", "id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("chat_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("turn", sa.Integer, nullable=False),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("failed", sa.Boolean, nullable=False),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("history", sa.Text, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.UniqueConstraint("chat_id", "turn", "position", name="uq_messages_turn"),
        sa.UniqueConstraint("owner_id", "idempotency_key", name="uq_messages_key"),
    )
    op.create_table(
        "lessons",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("content_type", sa.String(10), nullable=False),
        sa.Column("difficulty", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("confirmed", sa.Boolean, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("deleted_at", _TIME, nullable=True),
        sa.UniqueConstraint("owner_id", "idempotency_key", name="uq_lessons_key"),
    )
    op.create_index("ix_lessons_owner_created", "lessons", ["owner_id", "created_at", "id"])
    op.create_table(
        "job_links",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("target_kind", sa.String(10), nullable=True),
        sa.Column("target_id", sa.String(36), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_links")
    op.drop_table("lessons")
    op.drop_table("messages")
    op.drop_table("chats")
    op.drop_table("assets")
    op.drop_table("posts")
