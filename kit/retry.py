"""Waiting for a dependency at start-up: keep trying with capped exponential backoff.

A service whose database or bus is not up yet waits for it (its health says
NOT_SERVING meanwhile); the gateway does the same for NATS (/readyz says so)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kit.backoff import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 5.0
# One waiter, nothing racing it: no jitter (0.2 s, 0.4 s, … 5 s).
WAIT = Backoff(FIRST_DELAY_SECONDS, MAX_DELAY_SECONDS, "none")


async def retry_until_ready(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Await `attempt()` until it succeeds; log each failure with what is awaited."""
    failures = 0
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            delay = WAIT.delay(failures)
            log.warning(
                "%s not ready, retrying", what, extra={"error": repr(exc), "retry_in": delay}
            )
            await asyncio.sleep(delay)
