"""What makes the content service: its servicers, its migrations, its consumers, its
background loops."""

from __future__ import annotations

from pathlib import Path

from kit.server import Resources, ServiceParts, ServiceSpec
from services.content import api, background, events
from services.content.settings import ContentOptions

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(
    consumer_prefix: str = "content", options: ContentOptions | None = None
) -> ServiceSpec:
    """The content service's spec; tests give each run its own consumer names."""
    settings = options or ContentOptions.from_env()

    def build(resources: Resources) -> ServiceParts:
        return ServiceParts(
            servicers=lambda server: api.register(server, resources),
            consumers=lambda: events.consumers(resources, consumer_prefix),
            background=lambda: background.loops(resources.uow, settings),
        )

    return ServiceSpec(name="content", build=build, migrations=MIGRATIONS)


SPEC = make_spec()
