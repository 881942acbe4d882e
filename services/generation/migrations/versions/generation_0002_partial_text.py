"""TEXT and CHAT replies stream: the job keeps its reply so far while it runs, for
WatchJob's late joiners.

Revision ID: generation_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "generation_0002"
down_revision = "generation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("partial_text", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("jobs", "partial_text")
