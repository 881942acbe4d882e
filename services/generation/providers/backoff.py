"""Backoff for provider calls: the retry arithmetic is the kit's (`kit.backoff`,
re-exported here for the provider settings); what is the providers' own is how
polling a provider job slows down."""

from __future__ import annotations

from dataclasses import dataclass

from kit.backoff import Backoff, RetryPolicy, full_jitter, parse_retry_after, retry_delay

__all__ = ["PollSchedule", "RetryPolicy", "full_jitter", "parse_retry_after", "retry_delay"]


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
        schedule = Backoff(self.initial_seconds, self.max_seconds, "none", self.factor)
        return schedule.delay(polls_done)
