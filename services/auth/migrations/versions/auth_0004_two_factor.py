"""Two-factor sign-in (TOTP factors, recovery codes, login challenges). Signing keys'
`private_key` now holds a value sealed with the KEK (services/auth/kek.py); rows
stored before as plain PEM are sealed by the first start-up (Keyring.seal_at_rest),
which needs the KEK and so cannot run here.

Revision ID: auth_0004
Revises: auth_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0004"
down_revision = "auth_0003"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def _user_id(primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(
        "user_id",
        sa.String(36),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "totp_factors",
        _user_id(primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("confirmed_at", _TIME, nullable=True),
        sa.Column("last_step", sa.Integer, nullable=True),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        _user_id(),
        sa.Column("used_at", _TIME, nullable=True),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])
    op.create_table(
        "login_challenges",
        sa.Column("challenge_hash", sa.String(64), primary_key=True),
        _user_id(),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
    )
    op.create_index("ix_login_challenges_user_id", "login_challenges", ["user_id"])


def downgrade() -> None:
    op.drop_table("login_challenges")
    op.drop_table("recovery_codes")
    op.drop_table("totp_factors")
