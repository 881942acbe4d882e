"""Job links are pruned by age (background.py): index the time they were last
written.

Revision ID: content_0006
"""

from alembic import op

revision = "content_0006"
down_revision = "content_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_job_links_updated_at", "job_links", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_job_links_updated_at", table_name="job_links")
