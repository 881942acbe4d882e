from kit.alembic_env import run_migrations
from services.auth.store import metadata

run_migrations(metadata)
