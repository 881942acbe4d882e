"""The time of day as klik reads it: an aware UTC datetime from a `Clock`.

Code that reads the time takes a clock (`clock: Clock = utc_now`) instead of calling
`datetime.now` itself, so a test can hand it a `ManualClock` and move time on:

    clock = ManualClock()
    ledger = Ledger(sessions, clock=clock)
    clock.advance(seconds=3600)          # the hold has expired now

Monotonic time (timeouts, deadlines, rate windows) is another matter and stays with
`time.monotonic` / the event loop's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "utc_now"]


class Clock(Protocol):
    """Anything called with no argument that returns the current time, aware, UTC."""

    def __call__(self) -> datetime: ...


def utc_now() -> datetime:
    """The wall clock: `datetime.now(UTC)`."""
    return datetime.now(UTC)


# A fixed, readable start for tests: far from any date the code treats specially.
_START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock that only moves when told to: `advance()` or `set()`."""

    def __init__(self, start: datetime = _START) -> None:
        self._now = _aware(start)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, *, seconds: float = 0.0) -> datetime:
        """Move on by `delta` and/or `seconds` (never backwards); the new time."""
        step = (delta or timedelta()) + timedelta(seconds=seconds)
        if step < timedelta():
            raise ValueError("a clock does not go backwards")
        self._now += step
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to `when` (aware), e.g. past an expiry; backwards too, for a skewed host."""
        self._now = _aware(when)

    def timestamp(self) -> float:
        """The time as seconds since the epoch, for code that wants a `time.time`."""
        return self._now.timestamp()


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("a clock's time is aware (UTC)")
    return when.astimezone(UTC)
