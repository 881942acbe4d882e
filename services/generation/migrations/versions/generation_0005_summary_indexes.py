"""Job summaries: jobs by the time they were created and last changed (GROUP BY day
over a window; provider error rates over the last day).

Revision ID: generation_0005
Revises: generation_0003
"""

from alembic import op

revision = "generation_0005"
down_revision = "generation_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_updated_at", "jobs", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_updated_at", "jobs")
    op.drop_index("ix_jobs_created_at", "jobs")
