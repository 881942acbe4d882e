"""A single-value cache with a time-to-live, for provider catalogues (avatars and
voices change rarely and cost a request each)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class TtlCache(Generic[T]):
    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._value: T | None = None
        self._fetched_at = 0.0
        # One refresh at a time: concurrent callers wait for it instead of each
        # sending the same request.
        self._lock = asyncio.Lock()

    async def get(self, fetch: Callable[[], Awaitable[T]]) -> T:
        """The cached value while fresh, else a fetched one. When the refresh fails
        and a stale value exists, the stale value is served (logged): a provider's
        outage should not empty its catalogue."""
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:
            if self._fresh():
                assert self._value is not None
                return self._value
            try:
                value = await fetch()
            except Exception as error:
                if self._value is None:
                    raise
                log.warning("catalogue refresh failed; serving the stale copy: %s", error)
                return self._value
            self._value, self._fetched_at = value, self._clock()
            return value

    def _fresh(self) -> bool:
        return self._value is not None and self._clock() - self._fetched_at < self.ttl
