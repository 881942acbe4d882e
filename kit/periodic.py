"""Background rounds a service runs beside its RPCs (sweepers, pruners, reapers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(interval: float, job: Callable[[], Awaitable[int]], what: str) -> None:
    """Run `job` every `interval` seconds until cancelled. `job` returns how many
    things it did (logged when not 0); a failure is logged and the next round tries
    again, so one bad round never stops the loop."""
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
