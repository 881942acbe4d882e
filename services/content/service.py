"""What makes the content service: its servicers, its migrations, its consumers."""

from __future__ import annotations

from pathlib import Path

from kit.server import ServiceSpec
from services.content import api, events

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(consumer_prefix: str = "content") -> ServiceSpec:
    """The content service's spec; tests give each run its own consumer names."""
    return ServiceSpec(
        name="content",
        register=api.register,
        migrations=MIGRATIONS,
        consumers=lambda resources: events.consumers(resources, consumer_prefix),
    )


SPEC = make_spec()
