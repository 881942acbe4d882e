"""What makes the auth service: its servicers, its migrations, its consumers."""

from pathlib import Path

from kit.server import ServiceSpec
from services.auth import api, events

SPEC = ServiceSpec(
    name="auth",
    register=api.register,
    migrations=Path(__file__).parent / "migrations",
    consumers=events.consumers,
)
