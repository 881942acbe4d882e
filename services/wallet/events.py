"""Events the wallet service publishes (through the outbox) and consumes."""

from __future__ import annotations

from collections.abc import Sequence

from kit.consumer import EventConsumer
from kit.server import Resources


def consumers(resources: Resources) -> Sequence[EventConsumer]:
    """The durable consumers this service runs; none yet."""
    return ()
