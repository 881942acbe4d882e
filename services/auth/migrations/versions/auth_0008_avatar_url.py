"""Avatars: users.avatar_url, the file URL content resolved the avatar asset to
(UpdateMe, klik.content.v1.AvatarService), published in `user.profile_changed`.

An avatar_asset_id stored before this revision was never checked (it could name
another user's asset, or none) and never shown (avatar_url was always ""): it is
cleared, so every avatar_asset_id left has the URL content resolved for it.

Revision ID: auth_0008
Revises: auth_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0008"
down_revision = "auth_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("avatar_url", sa.Text(), nullable=False, server_default=""))
    op.execute("UPDATE users SET avatar_asset_id = '' WHERE avatar_asset_id <> ''")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("avatar_url")
