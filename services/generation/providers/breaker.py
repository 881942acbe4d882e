"""A circuit breaker per provider, as a state machine with no I/O and an injected
clock.

    closed     calls pass; `failure_threshold` consecutive failures open it
    open       calls are refused at once (no request is sent) for `cooldown_seconds`
    half_open  the cool-down is over: one probe call passes, the others are still
               refused; the probe's success closes the circuit, its failure opens it
               again for another cool-down

A call asks `acquire()` for a permit and reports its outcome with `succeeded`,
`failed` or `abandoned` (cancelled, no verdict), so the probe is known by its permit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    """`Provider.circuit_state` on the wire."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")


@dataclass(frozen=True)
class Permit:
    probe: bool  # the one call let through to test a half-open circuit


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._failures = 0  # consecutive, while closed
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._probing or self._cooled_down():
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a probe through (0 otherwise)."""
        if self._opened_at is None:
            return 0.0
        return max(self._opened_at + self.policy.cooldown_seconds - self._clock(), 0.0)

    def acquire(self) -> Permit | None:
        """A permit to call the provider, or None: refuse the call."""
        if self._opened_at is None:
            return Permit(probe=False)
        if self._probing or not self._cooled_down():
            return None
        self._probing = True
        return Permit(probe=True)

    def succeeded(self, permit: Permit) -> None:
        """The provider answered usefully: whatever the state, it is healthy."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self, permit: Permit) -> None:
        if permit.probe:
            self._opened_at = self._clock()  # not recovered: another cool-down
            self._probing = False
        elif self._opened_at is None:
            self._failures += 1
            if self._failures >= self.policy.failure_threshold:
                self._opened_at = self._clock()
        # else: a call let through before the circuit opened failed late; it is
        # already open, and its cool-down stands.

    def abandoned(self, permit: Permit) -> None:
        """The call ended without a verdict (cancelled): free the probe slot."""
        if permit.probe:
            self._probing = False

    def _cooled_down(self) -> bool:
        assert self._opened_at is not None
        return self._clock() >= self._opened_at + self.policy.cooldown_seconds
