"""Authors, comments and likes: the public profiles read model (fed by auth's
events), comments with one level of replies, likes of posts and comments, and the
counters kept beside them (posts.like_count, posts.comment_count,
comments.like_count), changed in the same transaction as the rows they count.

Revision ID: content_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0002"
down_revision = "content_0001"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("avatar_url", sa.Text, nullable=False),
        sa.Column("changed_at", _TIME, nullable=False),
        sa.Column("deleted_at", _TIME, nullable=True),
    )
    op.create_index("ix_profiles_handle", "profiles", ["handle"])
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("like_count", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("comment_count", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "comments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("post_id", sa.String(36), nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.String(36), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("like_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("deleted_at", _TIME, nullable=True),
        sa.Index("ix_comments_post_created", "post_id", "created_at", "id"),
        sa.Index("ix_comments_author", "author_id"),
    )
    op.create_table(
        "likes",
        # `post` or `comment`, and its id.
        sa.Column("target_kind", sa.String(10), primary_key=True),
        sa.Column("target_id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Index("ix_likes_user", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("likes")
    op.drop_table("comments")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("comment_count")
        batch.drop_column("like_count")
    op.drop_index("ix_profiles_handle", "profiles")
    op.drop_table("profiles")
