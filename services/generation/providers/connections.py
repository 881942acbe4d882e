"""The replica's provider connections: one httpx client for every provider, and a
gate in front of its pool.

Why the gate: httpcore's pool re-scans its whole queue of waiting requests against
every connection each time one is handed out or given back (encode/httpcore#1035,
open), so with a thousand media jobs polling at once through 100 connections the
assignment itself took a quarter of the replica's CPU (py-spy, bench.media_inflight)
and the polls waited past their pool timeout. Waiting here instead, on a semaphore
with as many slots as the pool has connections, keeps httpcore's queue empty: a
request reaches the pool only when a connection is free for it. A slot is held for
as long as the connection is: a whole request, or a streamed reply until it is
closed."""

from __future__ import annotations

import asyncio

import httpx

DEFAULT_MAX_CONNECTIONS = 200  # per replica, every provider together
KEEPALIVE_SHARE = 4  # a quarter of them kept open while idle


def client(max_connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"user-agent": "klik-generation"},
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max(1, max_connections // KEEPALIVE_SHARE),
        ),
    )


class ConnectionGate:
    """At most `size` provider requests in the pool at once."""

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)

    async def enter(self, within: float | None) -> None:
        """Take a slot, waiting at most `within` seconds (None: as long as it takes);
        httpx.PoolTimeout when none came free in time, as the pool itself would."""
        if not self._free.locked():
            await self._free.acquire()  # the common case: no timer to arm
            return
        try:
            async with asyncio.timeout(within):
                await self._free.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"no provider connection free within {within} s") from None

    def leave(self) -> None:
        self._free.release()
