"""Provider callbacks that cut a poll's wait short. A provider that calls back when
a job ends (HeyGen's and Leonardo's webhooks, callbacks.py) wakes the worker polling
that job, on whichever replica it runs (the wake travels over NATS, streams.py): it
polls at once instead of at its next scheduled poll. The poll stays the source of
truth — a callback is only a hint to look now, so a forged or replayed one costs at
most one early poll — and the schedule stays the safety net for callbacks that never
come."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class Wakeups:
    """The provider jobs polled on this replica, by provider job id."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}

    @contextlib.contextmanager
    def watching(self, provider_job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the provider calls back about this job, for as long
        as the context lasts."""
        event = self._waiting.setdefault(provider_job_id, asyncio.Event())
        try:
            yield event
        finally:
            if self._waiting.get(provider_job_id) is event:
                del self._waiting[provider_job_id]

    def wake(self, provider_job_id: str) -> bool:
        """Whether a poll of that job was waiting here."""
        event = self._waiting.get(provider_job_id)
        if event is None:
            return False
        event.set()
        return True
