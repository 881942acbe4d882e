from kit.alembic_env import run_migrations
from services.wallet.store import metadata

run_migrations(metadata)
