"""Following a provider job until it is done: poll, back off, give up at the
deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from services.generation.providers.backoff import PollSchedule
from services.generation.providers.errors import ProviderTimeout
from services.generation.providers.values import MediaResult, Progress


async def wait_until_done(
    poll: Callable[[], Awaitable[Progress]],
    *,
    provider: str,
    what: str,
    schedule: PollSchedule,
    deadline: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    wake: asyncio.Event | None = None,
) -> MediaResult:
    """Poll until the job is done and return its result. `deadline` is on the
    `time.monotonic()` clock; past it, PROVIDER_TIMEOUT. A failed job raises from
    `poll` itself. `wake` set (the provider called back, wakeups.py) ends the wait
    for the next poll at once."""
    polls, status = 0, "not polled"
    while True:
        try:
            progress = await poll()
        except ProviderTimeout:
            if time.monotonic() < deadline:
                raise
            progress = None  # the deadline fell during this poll
        if progress is not None and progress.result is not None:
            return progress.result
        polls += 1
        status = progress.status if progress is not None else status
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderTimeout(provider, f"{provider}: {what} still {status} at its deadline")
        # The last wait is cut short: one more poll right at the deadline.
        await _pause(sleep, min(schedule.delay(polls), remaining), wake)


async def _pause(
    sleep: Callable[[float], Awaitable[None]], seconds: float, wake: asyncio.Event | None
) -> None:
    """`sleep(seconds)`, or less if `wake` is set meanwhile (then it is cleared)."""
    if wake is None:
        await sleep(seconds)
        return
    if not wake.is_set():
        napping = asyncio.ensure_future(sleep(seconds))
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({napping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            napping.cancel()
            woken.cancel()
    wake.clear()
