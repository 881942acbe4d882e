"""What makes the wallet service: its servicers, its migrations, its consumers."""

from pathlib import Path

from kit.server import ServiceSpec
from services.wallet import api, events

SPEC = ServiceSpec(
    name="wallet",
    register=api.register,
    migrations=Path(__file__).parent / "migrations",
    consumers=events.consumers,
)
