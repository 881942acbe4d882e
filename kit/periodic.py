"""Background rounds a service runs beside its RPCs (sweepers, pruners, reapers),
and how they wait and stop.

Python 3.11's `asyncio.wait_for` drops a cancellation that lands in the loop turn
where the awaited future completes (CPython gh-86296, fixed in 3.12); libraries
use it everywhere (aiosmtplib waits on every SMTP reply with it), so a loop here
checks `raise_if_cancel_requested()` after each round, waits with `wait_event` (built on
`asyncio.timeout`, which has no such race), and shutdown cancels with
`cancel_and_wait`, which cancels again whatever outlived its cancellation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

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
        raise_if_cancel_requested()
        await asyncio.sleep(interval)


def raise_if_cancel_requested() -> None:
    """Raise CancelledError when this task was asked to stop and a library swallowed
    the cancellation (see the module's docstring)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def wait_event(event: asyncio.Event, within: float) -> bool:
    """Wait until `event` is set; False when `within` seconds pass first."""
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return False
    return True


# How often a task that outlived its cancellation is cancelled again.
_RECANCEL_SECONDS = 0.5


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]], within: float) -> list[str]:
    """Cancel `tasks` and wait until they end; the names of those still running after
    `within` seconds. A task that outlives its cancellation is cancelled again every
    half second: a library can swallow a cancellation (see the module's docstring),
    and a shutdown must not hang on that."""
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while pending:
        for task in pending:
            task.cancel()
        left = until - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(_RECANCEL_SECONDS, left))
        if pending:
            names = sorted(task.get_name() for task in pending)
            log.warning("%s outlived cancellation; cancelling again", ", ".join(names))
    return sorted(task.get_name() for task in pending)
