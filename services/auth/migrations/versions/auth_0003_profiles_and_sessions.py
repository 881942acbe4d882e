"""Public profiles and listable sessions: users.handle (unique, case-insensitive),
users.bio, users.avatar_asset_id; sessions.last_used_at, user_agent, client_address.

Revision ID: auth_0003
Revises: auth_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0003"
down_revision = "auth_0002"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("handle", sa.String(30), nullable=True))
        batch.add_column(sa.Column("bio", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("avatar_asset_id", sa.String(64), nullable=False, server_default="")
        )
    # Handles are stored lower case; the index on lower() holds even if one is not.
    # NULL (no handle) may repeat.
    op.create_index("uq_users_handle", "users", [sa.text("lower(handle)")], unique=True)

    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_used_at", _TIME, nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(300), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("client_address", sa.String(100), nullable=False, server_default="")
        )
    op.execute("UPDATE sessions SET last_used_at = created_at WHERE last_used_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("client_address")
        batch.drop_column("user_agent")
        batch.drop_column("last_used_at")
    op.drop_index("uq_users_handle", "users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("avatar_asset_id")
        batch.drop_column("bio")
        batch.drop_column("handle")
