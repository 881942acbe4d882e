"""Background jobs of the wallet service, run by every replica while it serves:
the hold sweeper (expire open holds past `expires_at`) and the pruning of old
idempotency keys. Both are safe to run in several replicas at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any

from kit.server import Resources
from services.wallet.ledger import Ledger
from services.wallet.settings import WalletOptions

log = logging.getLogger(__name__)


async def every(interval: float, job: Callable[[], Awaitable[int]], what: str) -> None:
    """Run `job` every `interval` seconds until cancelled; failures are logged and
    the next round tries again."""
    while True:
        try:
            done = await job()
            if done:
                log.info("%s: %d", what, done)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", what)
        await asyncio.sleep(interval)


def background(resources: Resources, options: WalletOptions) -> Sequence[Coroutine[Any, Any, None]]:
    ledger = Ledger(resources.sessions, committed=resources.events_committed)
    retention = timedelta(hours=options.key_retention_hours)
    return (
        every(options.sweep_interval, ledger.expire_due, "expired holds"),
        every(options.prune_interval, lambda: ledger.prune_keys(retention), "pruned keys"),
    )
