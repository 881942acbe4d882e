"""What makes the generation service: its servicers, its migrations, its consumers."""

from __future__ import annotations

from pathlib import Path

import grpc

from kit.server import Resources, ServiceSpec
from services.generation import api, events
from services.generation.config import GenerationSettings
from services.generation.providers.registry import Providers

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(
    settings: GenerationSettings | None = None, providers: Providers | None = None
) -> ServiceSpec:
    """The generation spec; its settings come from the environment when the server is
    built unless given (tests give them, and may give the providers too)."""

    def register(server: grpc.aio.Server, resources: Resources) -> tuple[str, ...]:
        return tuple(api.register(server, resources, settings, providers))

    return ServiceSpec(
        name="generation",
        register=register,
        migrations=MIGRATIONS,
        consumers=events.consumers,
    )


SPEC = make_spec()
