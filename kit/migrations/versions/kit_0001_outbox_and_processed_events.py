"""The kit's tables in every service database: outbox and processed_events.

The kit's migrations are their own Alembic branch (label `kit`), found beside every
service's own versions by `kit.db.migrate`, so a change to these tables is written
once and reaches every service.

Revision ID: kit_0001
"""

from alembic import op

from kit.tables import create_kit_tables, drop_kit_tables

revision = "kit_0001"
down_revision = None
branch_labels = ("kit",)
depends_on = None


def upgrade() -> None:
    create_kit_tables(op.get_bind())


def downgrade() -> None:
    drop_kit_tables(op.get_bind())
