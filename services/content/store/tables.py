"""The content service's tables (its own database only), and the few things every
query module here shares. The kit's outbox and processed-events tables are added by
the kit's own migration branch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    or_,
)
from sqlalchemy.sql.elements import ColumnElement

from kit.db import as_utc

metadata = MetaData()

_SEQ = BigInteger().with_variant(Integer, "sqlite")
_TIME = DateTime(timezone=True)

posts = Table(
    "posts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("author_id", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    # JSON list of asset ids, in the author's order.
    Column("asset_ids", Text, nullable=False),
    Column("visibility", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("hidden_reason", Text, nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("published_at", _TIME, nullable=True),
    Column("deleted_at", _TIME, nullable=True),
    # Counters kept in the same transaction as the likes and comments they count.
    Column("like_count", Integer, nullable=False, server_default="0"),
    Column("comment_count", Integer, nullable=False, server_default="0"),
    Index("ix_posts_feed", "status", "visibility", "published_at", "id"),
    Index("ix_posts_author_feed", "author_id", "published_at", "id"),
    # Searched (content_0007): `search_tsv` on PostgreSQL, `posts_fts` on SQLite.
)

assets = Table(
    "assets",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("owner_id", String(64), nullable=False),
    # One asset per job, whatever happens to the event: the key of exactly-once.
    # NULL for an upload (kind UPLOAD), whose upload row names its one asset.
    Column("job_id", String(64), nullable=True, unique=True),
    Column("kind", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("mime_type", String(100), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Index("ix_assets_owner_seq", "owner_id", "seq"),
)

# ---- Uploads ----
# A granted upload (CreateUpload): what its signed URL allows, and once completed
# the asset it became (the key of exactly-once for CompleteUpload).
uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("key", String(200), nullable=False),
    Column("expires_at", _TIME, nullable=False),
    Column("asset_id", String(36), nullable=True),
    Column("created_at", _TIME, nullable=False),
    # The client's idempotency key (NULL: none given) and what it was asked with.
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False, server_default=""),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_uploads_owner_key"),
    Index("ix_uploads_owner", "owner_id"),
)

chats = Table(
    "chats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("model", String(100), nullable=False),
    # Turns handed out so far; SendMessage takes the next one under the chat's lock.
    Column("turns", Integer, nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("deleted_at", _TIME, nullable=True),
    # The assistant the chat speaks as, and the version of it the chat answers as
    # (JSON {name, instructions, model, temperature}); both None for a plain chat.
    Column("assistant_id", String(36), nullable=True),
    Column("persona", Text, nullable=True),
    Index("ix_chats_owner_activity", "owner_id", "updated_at", "id"),
    Index("ix_chats_assistant", "assistant_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("chat_id", String(36), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("turn", Integer, nullable=False),
    # 0: the user's message of the turn; 1: the reply (or failure note) to it.
    Column("position", SmallInteger, nullable=False),
    Column("role", String(10), nullable=False),
    Column("content", Text, nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("failed", Boolean, nullable=False),
    # A user message is shown once its job is known (SendMessage committed it).
    Column("confirmed", Boolean, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    # A user message's job context (JSON [[role, content], ...]) as first sent, so a
    # retried CreateJob sends the very same request.
    Column("history", Text, nullable=True),
    # The persona (JSON, as chats.persona) a user message's job was first sent with.
    Column("persona", Text, nullable=True),
    Column("created_at", _TIME, nullable=False),
    # One user message and at most one reply per turn: a reply is written once.
    UniqueConstraint("chat_id", "turn", "position", name="uq_messages_turn"),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_messages_key"),
)

lessons = Table(
    "lessons",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("topic", String(300), nullable=False),
    Column("content_type", String(10), nullable=False),
    Column("difficulty", SmallInteger, nullable=False),
    Column("status", String(12), nullable=False),
    Column("body", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("confirmed", Boolean, nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("deleted_at", _TIME, nullable=True),
    # When it was (last) published: the catalogue's order. None unless published.
    Column("published_at", _TIME, nullable=True),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_lessons_key"),
    Index("ix_lessons_owner_created", "owner_id", "created_at", "id"),
    Index("ix_lessons_catalog", "status", "published_at", "id"),
    # Searched (content_0007): `search_tsv` on PostgreSQL, `lessons_fts` on SQLite.
)

# The public profiles of users (auth's events feed them): never the email.
profiles = Table(
    "profiles",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("handle", String(64), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("avatar_url", Text, nullable=False),
    # When auth said so (the event's occurred_at): an older event changes nothing.
    Column("changed_at", _TIME, nullable=False),
    Column("deleted_at", _TIME, nullable=True),
    Index("ix_profiles_handle", "handle"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("post_id", String(36), nullable=False),
    Column("author_id", String(64), nullable=False),
    # The top-level comment this one replies to; None for a top-level comment.
    Column("parent_id", String(36), nullable=True),
    Column("body", Text, nullable=False),
    Column("like_count", Integer, nullable=False, server_default="0"),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("deleted_at", _TIME, nullable=True),
    Index("ix_comments_post_created", "post_id", "created_at", "id"),
    Index("ix_comments_author", "author_id"),
)

# One like per user and target (`post` or `comment`).
likes = Table(
    "likes",
    metadata,
    Column("target_kind", String(10), primary_key=True),
    Column("target_id", String(36), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("created_at", _TIME, nullable=False),
    Index("ix_likes_user", "user_id"),
)

# Who follows whom: one row per pair.
follows = Table(
    "follows",
    metadata,
    Column("follower_id", String(64), primary_key=True),
    Column("followee_id", String(64), primary_key=True),
    Column("created_at", _TIME, nullable=False),
    Index("ix_follows_followee", "followee_id", "created_at", "follower_id"),
    Index("ix_follows_follower", "follower_id", "created_at", "followee_id"),
)

# A recipient's notifications. Likes of one post aggregate into one row while it is
# unread: `aggregate_key` (unique per user) is `like:<post_id>` until it is read.
notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(64), nullable=False),
    # follow, comment, reply, like, generation, moderation
    Column("kind", String(20), nullable=False),
    # Who did it (the latest liker of an aggregated like); "" for none.
    Column("actor_id", String(64), nullable=False),
    # What it is about: a post, comment, job or user id.
    Column("subject_id", String(64), nullable=False),
    Column("post_id", String(36), nullable=False),
    Column("count", Integer, nullable=False),
    # Extra words (a moderator's reason, a job's error); "" for none.
    Column("note", Text, nullable=False),
    Column("aggregate_key", String(80), nullable=True),
    Column("read_at", _TIME, nullable=True),
    Column("created_at", _TIME, nullable=False),
    UniqueConstraint("user_id", "aggregate_key", name="uq_notifications_aggregate"),
    Index("ix_notifications_user_created", "user_id", "created_at", "id"),
    Index("ix_notifications_user_unread", "user_id", "read_at"),
)

# Whom a user muted: their actions notify that user no more.
mutes = Table(
    "mutes",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("muted_id", String(64), primary_key=True),
    Column("created_at", _TIME, nullable=False),
)

# A user's report of a post or comment: `open` until a moderator acts on its target
# (`actioned`) or dismisses it (`dismissed`).
reports = Table(
    "reports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reporter_id", String(64), nullable=False),
    Column("target_kind", String(10), nullable=False),
    Column("target_id", String(36), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("resolved_at", _TIME, nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Index("ix_reports_status_created", "status", "created_at", "id"),
    Index("ix_reports_target", "target_kind", "target_id", "status"),
)

# Every moderator action: who, what (hide, unhide, dismiss, delete), when, why.
moderation_actions = Table(
    "moderation_actions",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("moderator_id", String(64), nullable=False),
    Column("action", String(20), nullable=False),
    Column("target_kind", String(10), nullable=False),
    Column("target_id", String(36), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", _TIME, nullable=False),
)

# Saved assistants (personas) chats can speak as; soft-deleted.
assistants = Table(
    "assistants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("instructions", Text, nullable=False),
    Column("model", String(100), nullable=False),
    Column("temperature", Float, nullable=True),
    Column("visibility", String(10), nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Column("deleted_at", _TIME, nullable=True),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_assistants_key"),
    Index("ix_assistants_owner_created", "owner_id", "created_at", "id"),
    Index("ix_assistants_public", "visibility", "created_at", "id"),
)

job_links = Table(
    "job_links",
    metadata,
    Column("job_id", String(64), primary_key=True),
    # What the job was started for: `message` (a chat turn) or `lesson`, with its id.
    Column("target_kind", String(10), nullable=True),
    Column("target_id", String(36), nullable=True),
    # How the job ended: `succeeded` or `failed`, with its text or error.
    Column("outcome", String(10), nullable=True),
    Column("text", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("updated_at", _TIME, nullable=False),
    Index("ix_job_links_updated_at", "updated_at"),
)


def opt_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def after(time_col: Any, id_col: Any, when: datetime, row_id: str) -> ColumnElement[bool]:
    """Keyset condition for "oldest first" pages: strictly after the last row served."""
    return or_(time_col > when, and_(time_col == when, id_col > row_id))


def before(time_col: Any, id_col: Any, when: datetime, row_id: str) -> ColumnElement[bool]:
    """Keyset condition for "newest first" pages: strictly after the last row served."""
    return or_(time_col < when, and_(time_col == when, id_col < row_id))
