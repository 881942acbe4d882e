from kit.alembic_env import run_migrations
from services.auth import oidc_store  # noqa: F401  (its tables are on the same metadata)
from services.auth.store import metadata

run_migrations(metadata)
