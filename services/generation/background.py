"""The generation service's background loops, started once the service is ready and
run by every replica while it serves: the job workers (worker.py), the settler of
holds whose settlement did not get through, and the reaper of jobs whose creation
was interrupted (settlement.py). All are safe to run in several replicas at once."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any

from kit.periodic import every
from services.generation.settings import JobSettings
from services.generation.settlement import Settler
from services.generation.worker import Workers


def loops(
    workers: Workers, settler: Settler, settings: JobSettings
) -> Sequence[Coroutine[Any, Any, None]]:
    period = settings.sweep_seconds
    return (
        *workers.loops(),
        every(period, settler.settle_due, "holds settled late"),
        every(period, settler.reap, "interrupted job creations undone"),
    )
