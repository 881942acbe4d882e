"""What makes the content service: its servicers, its migrations, its consumers."""

from __future__ import annotations

from pathlib import Path

from kit.server import Resources, ServiceParts, ServiceSpec
from services.content import api, events

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(consumer_prefix: str = "content") -> ServiceSpec:
    """The content service's spec; tests give each run its own consumer names."""

    def build(resources: Resources) -> ServiceParts:
        return ServiceParts(
            servicers=lambda server: api.register(server, resources),
            consumers=lambda: events.consumers(resources, consumer_prefix),
        )

    return ServiceSpec(name="content", build=build, migrations=MIGRATIONS)


SPEC = make_spec()
