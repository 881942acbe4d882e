from kit.alembic_env import run_migrations
from tests.integration.effects import metadata

run_migrations(metadata)
