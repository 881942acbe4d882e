from kit.alembic_env import run_migrations
from services.generation.store import metadata

run_migrations(metadata)
