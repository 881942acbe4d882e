"""The content service's background loops, started once the service is ready and
run by every replica while it serves: the pruning of old job links. Safe to run in
several replicas at once (a prune is one DELETE)."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any

from kit.clock import utc_now
from kit.db import UnitOfWork
from kit.periodic import every
from services.content import store
from services.content.settings import ContentOptions


def loops(uow: UnitOfWork, options: ContentOptions) -> Sequence[Coroutine[Any, Any, None]]:
    keep = timedelta(hours=options.job_link_keep_hours)

    async def prune() -> int:
        async with uow.write() as session:
            return await store.prune_job_links(session, utc_now() - keep)

    return (every(options.prune_interval, prune, "old job links pruned"),)
