"""Token buckets, kept in this process: a limit holds per gateway replica (N replicas
let N times the rate through). Each bucket holds up to `capacity` tokens and refills
at `capacity / period` tokens a second; a request takes one token from every bucket
it draws on, or none if any is empty."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kit.config import ConfigError


@dataclass(frozen=True)
class Rate:
    """`capacity` requests at once (the burst), refilled evenly over `period` seconds."""

    capacity: int
    period: float

    @property
    def per_second(self) -> float:
        return self.capacity / self.period

    @classmethod
    def parse(cls, name: str, text: str) -> Rate | None:
        """`"60/60"` (60 requests a minute, bursts of 60); `"0"` or `"off"`: no limit."""
        text = text.strip().lower()
        if text in ("0", "off", "none"):
            return None
        count, slash, seconds = text.partition("/")
        try:
            rate = cls(int(count), float(seconds)) if slash else None
        except ValueError:
            rate = None
        if rate is None or rate.capacity <= 0 or not rate.period > 0:
            raise ConfigError(f"{name} must be REQUESTS/SECONDS (e.g. 60/60) or 0, got {text!r}")
        return rate


class TokenBuckets:
    """One bucket per key, all with the same rate."""

    def __init__(
        self,
        rate: Rate,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.rate.capacity), now))
        return min(float(self.rate.capacity), tokens + (now - at) * self.rate.per_second)

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` has a whole token (0 when it has one now)."""
        missing = 1.0 - self.tokens(key, now)
        return 0.0 if missing <= 0 else missing / self.rate.per_second

    def take(self, key: str, now: float) -> None:
        self._buckets[key] = (self.tokens(key, now) - 1.0, now)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """A full bucket is the same as no bucket: drop those to bound memory."""
        full = [k for k in self._buckets if self.tokens(k, now) >= self.rate.capacity]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """Buckets per route class; `check` takes a token for each key or says how long
    to wait."""

    def __init__(
        self,
        rates: Mapping[str, Rate | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.classes = {
            name: TokenBuckets(rate, clock=clock) for name, rate in rates.items() if rate
        }

    def check(self, route_class: str, keys: Sequence[str]) -> int:
        """0 when the request may go (its tokens are taken), else the whole seconds
        to wait (for `Retry-After`)."""
        return self.check_all([(route_class, key) for key in keys])

    def check_all(self, draws: Sequence[tuple[str, str]]) -> int:
        """`check` over buckets of several classes at once, (class, key) each: a
        request takes from all of them or from none."""
        now = self.clock()
        limited = [(self.classes[name], key) for name, key in draws if name in self.classes]
        wait = max((buckets.wait(key, now) for buckets, key in limited), default=0.0)
        if wait > 0:
            return max(1, math.ceil(wait))
        for buckets, key in limited:
            buckets.take(key, now)
        return 0
