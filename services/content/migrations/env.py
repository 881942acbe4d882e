from kit.alembic_env import run_migrations
from services.content.store import metadata

run_migrations(metadata)
