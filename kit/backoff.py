"""How long to wait before trying again: one capped exponential backoff for the kit
and the services, with no I/O.

    WAIT = Backoff(base_seconds=0.1, cap_seconds=5.0)          # full jitter
    await asyncio.sleep(WAIT.delay(failures))                  # failures counts from 1

The n-th wait's ceiling is `min(cap, base * factor**(n-1))`; `jitter` says how much
of it is drawn at random:

- `"full"` (the default): uniform in [0, ceiling). Many clients retrying a recovering
  dependency spread over the whole window instead of arriving in lockstep.
- `"equal"`: uniform in [ceiling/2, ceiling): spread out, but never (almost) at once.
- `"none"`: exactly the ceiling, for a wait that someone else schedules (a JetStream
  redelivery delay) or one waiter that nothing races (start-up, polling).

HTTP callers add a `RetryPolicy`: a number of attempts, and a `Retry-After` the
server sent as a floor under the backoff (`retry_delay`, `parse_retry_after`)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = [
    "Backoff",
    "Jitter",
    "RetryPolicy",
    "full_jitter",
    "parse_retry_after",
    "retry_delay",
]

Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff; `delay(n)` is the wait after the n-th failure."""

    base_seconds: float
    cap_seconds: float
    jitter: Jitter = "full"
    factor: float = 2.0

    def ceiling(self, failures: int) -> float:
        """`min(cap, base * factor**(failures-1))`; `failures` below 1 counts as 1.
        Never overflows, however many failures a long outage counts."""
        try:
            grown = self.base_seconds * self.factor ** (max(failures, 1) - 1)
        except OverflowError:
            grown = float("inf")
        return float(min(self.cap_seconds, grown))

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after `failures` (>= 1) failed attempts in a row. `rand`
        returns a float in [0, 1); tests pass a constant."""
        ceiling = self.ceiling(failures)
        if self.jitter == "full":
            return float(ceiling * rand())
        if self.jitter == "equal":
            return float(ceiling * (0.5 + 0.5 * rand()))
        return ceiling


@dataclass(frozen=True)
class RetryPolicy:
    """Retrying a call to an outside HTTP API: full-jitter backoff over at most
    `max_attempts` attempts in all (the first one included)."""

    max_attempts: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 20.0
    # A server asking us to come back later than this fails the call now: a job
    # should not sit on a worker for minutes waiting out a rate limit.
    max_retry_after_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.base_seconds, self.cap_seconds, "full")


def full_jitter(failures: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """The policy's full-jitter wait after `failures` (>= 1) failed attempts: uniform
    in [0, min(cap, base * 2^(failures-1)))."""
    return policy.backoff.delay(failures, rand)


def retry_delay(
    attempts: int,
    retry_after: float | None,
    policy: RetryPolicy,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before the next attempt after `attempts` failed ones, or None
    when no attempt is left (or the server asks for a longer wait than we allow).
    A `Retry-After` is a floor: never sooner than the server asked."""
    if attempts >= policy.max_attempts:
        return None
    jitter = full_jitter(attempts, policy, rand)
    if retry_after is None:
        return jitter
    if retry_after > policy.max_retry_after_seconds:
        return None
    return max(retry_after, jitter)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks to wait: delay-seconds (`120`; decimals are
    accepted too) or an HTTP-date, relative to `now` (aware, UTC). None when absent
    or unreadable; a date in the past means 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are GMT
            return None
        seconds = (when - now).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
        return None
    return max(seconds, 0.0)
