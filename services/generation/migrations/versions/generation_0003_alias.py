"""Providers, plural, with routing: a TEXT/CHAT job keeps the model alias it was
created with, whose candidates the worker tries in order.

Revision ID: generation_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "generation_0003"
down_revision = "generation_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("alias", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("jobs", "alias")
