"""A test service's own first migration; the kit's branch (outbox, processed_events)
is applied beside it by kit.db.migrate."""

from alembic import op

from tests.integration import effects

revision = "0001"
down_revision = None


def upgrade() -> None:
    effects.metadata.create_all(op.get_bind())


def downgrade() -> None:
    effects.metadata.drop_all(op.get_bind())
