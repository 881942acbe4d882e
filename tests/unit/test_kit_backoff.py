"""kit.backoff: the one capped exponential backoff, its three jitters, and the
Retry-After floor HTTP callers put under it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kit.backoff import Backoff, RetryPolicy, full_jitter, parse_retry_after, retry_delay


def test_ceiling_grows_by_factor_to_its_cap() -> None:
    wait = Backoff(0.2, 5.0, "none")
    assert [wait.delay(n) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert wait.delay(0) == 0.2, "no failure yet counts as the first"
    slow = Backoff(1.0, 10.0, "none", factor=1.5)
    assert [slow.delay(n) for n in (1, 2, 3)] == [1.0, 1.5, 2.25]


def test_a_long_outage_never_overflows() -> None:
    assert Backoff(0.5, 30.0, "none").delay(5000) == 30.0
    assert Backoff(0.5, 30.0, "full").delay(10**6, lambda: 0.5) == 15.0


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5, 0.999])
def test_full_jitter_spans_zero_to_the_ceiling(r: float) -> None:
    wait = Backoff(0.1, 5.0)
    assert wait.jitter == "full"
    for n in range(1, 12):
        assert wait.delay(n, lambda: r) == wait.ceiling(n) * r


@pytest.mark.parametrize("r", [0.0, 0.5, 0.999])
def test_equal_jitter_keeps_at_least_half(r: float) -> None:
    wait = Backoff(0.4, 30.0, "equal")
    for n in range(1, 10):
        delay = wait.delay(n, lambda: r)
        assert wait.ceiling(n) / 2 <= delay < wait.ceiling(n)


def test_default_rand_stays_in_the_window() -> None:
    wait = Backoff(1.0, 8.0)
    for n in range(1, 6):
        for _ in range(50):
            assert 0 <= wait.delay(n) < wait.ceiling(n)


POLICY = RetryPolicy(max_attempts=4, base_seconds=0.5, cap_seconds=4.0, max_retry_after_seconds=60)


def test_retry_policy_is_full_jitter_with_a_retry_after_floor() -> None:
    half = lambda: 0.5  # noqa: E731
    assert full_jitter(3, POLICY, half) == POLICY.backoff.delay(3, half) == 1.0
    assert retry_delay(1, None, POLICY, half) == 0.25
    assert retry_delay(4, None, POLICY, half) is None, "no attempt left"
    assert retry_delay(1, 3.0, POLICY, half) == 3.0, "never sooner than asked"
    assert retry_delay(3, 0.1, POLICY, half) == 1.0, "nor sooner than our own backoff"
    assert retry_delay(1, 61.0, POLICY, half) is None, "longer than we wait: give up now"
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after("Mon, 23 Nov 2026 10:00:30 GMT", now) == 30.0
    for garbage in (None, "", "soon", "nan", "inf", "Mon, 23 Nov 2026 10:00:30 -0000"):
        assert parse_retry_after(garbage, now) is None, garbage
