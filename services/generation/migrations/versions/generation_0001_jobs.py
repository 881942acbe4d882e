"""The generation service's jobs table: every job, and the work queue.

Written out rather than `metadata.create_all()`, so this revision keeps creating
exactly this schema whatever later revisions change in store.py.

Revision ID: generation_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "generation_0001"
down_revision = None
branch_labels = ("generation",)
depends_on = None

_TIME = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_ACTIVE = sa.text("status IN ('QUEUED', 'RUNNING')")
_UNSETTLED = sa.text("settlement IN ('capture', 'release')")
_INTERNAL = sa.text("status IN ('PENDING', 'ABANDONED')")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("estimate", sa.BigInteger, nullable=False),
        sa.Column("cost_credits", sa.BigInteger, nullable=False),
        sa.Column("hold_id", sa.String(36), nullable=False),
        sa.Column("hold_expires_at", _TIME, nullable=False),
        sa.Column("settlement", sa.String(10), nullable=False),
        sa.Column("provider_job_id", sa.String(200), nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error_code", sa.String(40), nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("deadline_at", _TIME, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", _TIME, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ux_jobs_user_key", "jobs", ["user_id", "idempotency_key"], unique=True)
    op.create_index("ix_jobs_user_seq", "jobs", ["user_id", "seq"])
    op.create_index(
        "ix_jobs_active", "jobs", ["seq"], postgresql_where=_ACTIVE, sqlite_where=_ACTIVE
    )
    op.create_index(
        "ix_jobs_unsettled", "jobs", ["seq"], postgresql_where=_UNSETTLED, sqlite_where=_UNSETTLED
    )
    op.create_index(
        "ix_jobs_internal",
        "jobs",
        ["created_at"],
        postgresql_where=_INTERNAL,
        sqlite_where=_INTERNAL,
    )


def downgrade() -> None:
    op.drop_table("jobs")
