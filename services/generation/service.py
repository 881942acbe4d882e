"""What makes the generation service: its servicers, its migrations, its consumers."""

from pathlib import Path

from kit.server import ServiceSpec
from services.generation import api, events

SPEC = ServiceSpec(
    name="generation",
    register=api.register,
    migrations=Path(__file__).parent / "migrations",
    consumers=events.consumers,
)
