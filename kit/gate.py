"""The admission gate of a server: whether it takes new calls, and how many it is
still handling — what graceful shutdown waits on."""

from __future__ import annotations

import asyncio
import enum

from kit.periodic import wait_event


class Phase(enum.Enum):
    STARTING = "starting"  # dependencies (database, event bus) not ready yet
    SERVING = "serving"
    DRAINING = "draining"  # shutting down: finish in-flight calls, take no new ones


class CallGate:
    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def refusal(self) -> str | None:
        """Why a new call is refused right now, or None to admit it."""
        if self.phase is Phase.STARTING:
            return "service is starting"
        if self.phase is Phase.DRAINING:
            return "service is shutting down"
        return None

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """Wait until no call is in flight; False if `within` seconds passed first."""
        return await wait_event(self._idle, within)
