"""What makes the content service: its servicers, its migrations, its consumers."""

from pathlib import Path

from kit.server import ServiceSpec
from services.content import api, events

SPEC = ServiceSpec(
    name="content",
    register=api.register,
    migrations=Path(__file__).parent / "migrations",
    consumers=events.consumers,
)
