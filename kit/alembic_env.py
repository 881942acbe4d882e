"""The body of every service's `migrations/env.py`.

A service's env.py is just::

    from kit.alembic_env import run_migrations
    from services.wallet.store import metadata

    run_migrations(metadata)

Migrations run online only, on the connection `kit.db.migrate()` passes in through
`config.attributes["connection"]` (already inside the transaction that holds the
migration lock, so Alembic must not open or commit one of its own).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context
from sqlalchemy import Connection, MetaData

__all__ = ["run_migrations"]


def run_migrations(target_metadata: MetaData | Sequence[MetaData] | None = None) -> None:
    """Run the pending migrations; `target_metadata` serves `alembic revision --autogenerate`."""
    if context.is_offline_mode():
        raise RuntimeError("klik migrations run online only, through kit.db.migrate()")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "no database connection: run migrations with kit.db.migrate(engine, path)"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
