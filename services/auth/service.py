"""What makes the auth service: its servicers, its migrations, its consumers."""

from __future__ import annotations

from pathlib import Path

from kit.server import ServiceSpec
from services.auth import api, events
from services.auth.settings import AuthOptions

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(options: AuthOptions | None = None) -> ServiceSpec:
    """The auth service's spec; its options are read from the environment when the
    server is built unless given (tests give them)."""
    return ServiceSpec(
        name="auth",
        register=lambda server, resources: api.register(server, resources, options),
        migrations=MIGRATIONS,
        consumers=events.consumers,
    )


SPEC = make_spec()
