"""Assistants (saved personas) and the chats that speak as one: `assistants`, the
chat's assistant and the version of it the chat answers as, and the persona each
user message's job was first sent with (so a retry sends the very same request).

Revision ID: content_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0008"
down_revision = "content_0007"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "assistants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("visibility", sa.String(10), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("deleted_at", _TIME, nullable=True),
        sa.UniqueConstraint("owner_id", "idempotency_key", name="uq_assistants_key"),
        sa.Index("ix_assistants_owner_created", "owner_id", "created_at", "id"),
        sa.Index("ix_assistants_public", "visibility", "created_at", "id"),
    )
    op.add_column("chats", sa.Column("assistant_id", sa.String(36), nullable=True))
    op.add_column("chats", sa.Column("persona", sa.Text, nullable=True))
    op.create_index("ix_chats_assistant", "chats", ["assistant_id"])
    op.add_column("messages", sa.Column("persona", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("persona")
    op.drop_index("ix_chats_assistant", table_name="chats")
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("persona")
        batch.drop_column("assistant_id")
    op.drop_table("assistants")
