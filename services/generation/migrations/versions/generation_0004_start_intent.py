"""The intent to start a media job on its provider, stored before the paid start
call: a job resumed with it and no provider job id is looked up on the provider by
its reference instead of being declared lost (runner.py).

Revision ID: generation_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "generation_0004"
down_revision = "generation_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("start_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    # A media job RUNNING without its provider job id when this revision lands may
    # have been started by a worker of the previous version: it is looked up too.
    op.execute(
        "UPDATE jobs SET start_requested_at = updated_at WHERE status = 'RUNNING' "
        "AND provider_job_id = '' AND kind NOT IN ('TEXT', 'CHAT')"
    )


def downgrade() -> None:
    op.drop_column("jobs", "start_requested_at")
