"""kit.clock: the wall clock and the manual one tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kit.clock import Clock, ManualClock, utc_now


def test_utc_now_is_aware_utc() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    assert abs((datetime.now(UTC) - now).total_seconds()) < 5


def test_manual_clock_moves_only_when_told() -> None:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    clock: Clock = ManualClock(start)
    assert clock() == clock() == start
    assert isinstance(clock, ManualClock)
    assert clock.advance(seconds=90) == start + timedelta(seconds=90)
    assert clock.advance(timedelta(hours=1), seconds=1) == start + timedelta(seconds=3691)
    assert clock() == start + timedelta(seconds=3691)
    assert clock.timestamp() == clock().timestamp()


def test_manual_clock_refuses_naive_times_and_going_backwards() -> None:
    with pytest.raises(ValueError):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock()
    with pytest.raises(ValueError):
        clock.advance(seconds=-1)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1))


def test_set_jumps_and_normalises_to_utc() -> None:
    clock = ManualClock()
    clock.set(datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock() == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert clock().tzinfo is UTC
