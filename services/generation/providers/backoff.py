"""Backoff arithmetic for provider calls, with no I/O: how long to wait before the
next attempt, what a `Retry-After` header asks for, and how polling slows down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # attempts in all, the first one included
    base_seconds: float = 0.5
    cap_seconds: float = 20.0
    # A provider asking us to come back later than this fails the call now: a job
    # should not sit on a worker for minutes waiting out a rate limit.
    max_retry_after_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


def full_jitter(failures: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """ "Full jitter" backoff after `failures` (>= 1) failed attempts: uniform in
    [0, min(cap, base * 2^(failures-1))). Spreading retries over the whole window keeps
    many clients from hammering a recovering provider in lockstep."""
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2.0 ** (failures - 1))
    return float(ceiling * rand())


def retry_delay(
    attempts: int,
    retry_after: float | None,
    policy: RetryPolicy,
    rand: Callable[[], float],
) -> float | None:
    """Seconds to wait before the next attempt after `attempts` failed ones, or None
    when no attempt is left (or the provider asks for a longer wait than we allow).
    A `Retry-After` is a floor: never sooner than the provider asked."""
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


@dataclass(frozen=True)
class PollSchedule:
    """How often a provider job is polled: starting at `initial_seconds`, each wait
    `factor` times the last, never above `max_seconds`. Early polls catch fast jobs;
    later ones back off so a 10-minute video costs tens of requests, not hundreds."""

    initial_seconds: float = 1.0
    factor: float = 1.5
    max_seconds: float = 10.0

    def delay(self, polls_done: int) -> float:
        """Wait after the `polls_done`-th poll (counting from 1) before the next."""
        return float(
            min(self.max_seconds, self.initial_seconds * self.factor ** max(polls_done - 1, 0))
        )
