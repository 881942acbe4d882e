"""Social sign-in (OpenID Connect): oidc_identities, oidc_flows, oidc_tickets
(services/auth/oidc_store.py).

Revision ID: auth_0005
Revises: auth_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0005"
down_revision = "auth_0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def _user_id() -> sa.Column[str]:
    return sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "oidc_identities",
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        _user_id(),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("provider", "subject", name="pk_oidc_identities"),
    )
    op.create_index(
        "uq_oidc_identities_provider_user",
        "oidc_identities",
        ["provider", "user_id"],
        unique=True,
    )
    op.create_table(
        "oidc_flows",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("redirect", sa.Text(), nullable=False),
        sa.Column("app_state", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
    )
    op.create_index("ix_oidc_flows_expires_at", "oidc_flows", ["expires_at"])
    op.create_table(
        "oidc_tickets",
        sa.Column("ticket_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        _user_id(),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
    )
    op.create_index("ix_oidc_tickets_expires_at", "oidc_tickets", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_tickets_expires_at", "oidc_tickets")
    op.drop_table("oidc_tickets")
    op.drop_index("ix_oidc_flows_expires_at", "oidc_flows")
    op.drop_table("oidc_flows")
    op.drop_index("uq_oidc_identities_provider_user", "oidc_identities")
    op.drop_table("oidc_identities")
