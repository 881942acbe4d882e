"""Uploads (CreateUpload / CompleteUpload): the uploads table, and assets without a
generation job (an uploaded file's asset has no job_id).

Revision ID: content_0009
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0009"
down_revision = "content_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asset_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""),
        sa.UniqueConstraint("owner_id", "idempotency_key", name="uq_uploads_owner_key"),
    )
    op.create_index("ix_uploads_owner", "uploads", ["owner_id"])
    with op.batch_alter_table("assets") as batch:
        batch.alter_column("job_id", existing_type=sa.String(64), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM assets WHERE job_id IS NULL")
    with op.batch_alter_table("assets") as batch:
        batch.alter_column("job_id", existing_type=sa.String(64), nullable=False)
    op.drop_index("ix_uploads_owner", table_name="uploads")
    op.drop_table("uploads")
