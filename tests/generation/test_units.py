"""The I/O-free parts of the provider layer: backoff arithmetic, Retry-After, the
poll schedule, the circuit breaker's state machine (an injected clock), and the
sandbox's fault grammar and PNG writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox import faults, png
from services.generation.providers.backoff import (
    PollSchedule,
    RetryPolicy,
    full_jitter,
    parse_retry_after,
    retry_delay,
)
from services.generation.providers.breaker import BreakerPolicy, CircuitBreaker, CircuitState
from tests.generation.conftest import FakeClock
from tests.generation.media import read_png

POLICY = RetryPolicy(max_attempts=4, base_seconds=0.5, cap_seconds=4.0, max_retry_after_seconds=60)


# ---- backoff ----------------------------------------------------------------------------


def test_full_jitter_spans_zero_to_the_capped_exponential() -> None:
    assert [full_jitter(n, POLICY, lambda: 0.0) for n in (1, 2, 3)] == [0.0, 0.0, 0.0]
    top = [full_jitter(n, POLICY, lambda: 1.0) for n in (1, 2, 3, 4, 5, 10)]
    assert top == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


@given(failures=st.integers(1, 60), r=st.floats(0, 1, exclude_max=True))
def test_full_jitter_stays_in_its_window(failures: int, r: float) -> None:
    delay = full_jitter(failures, POLICY, lambda: r)
    assert 0 <= delay < min(4.0, 0.5 * 2 ** (failures - 1))


def test_retry_delay_is_bounded_and_retry_after_is_a_floor() -> None:
    half = lambda: 0.5  # noqa: E731
    assert retry_delay(1, None, POLICY, half) == 0.25
    assert retry_delay(3, None, POLICY, half) == 1.0
    assert retry_delay(4, None, POLICY, half) is None, "no attempt left"
    assert retry_delay(1, 3.0, POLICY, half) == 3.0, "never sooner than asked"
    assert retry_delay(3, 0.1, POLICY, half) == 1.0, "nor sooner than our own backoff"
    assert retry_delay(1, 61.0, POLICY, half) is None, "longer than we wait: give up now"
    assert retry_delay(4, 1.0, POLICY, half) is None


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 2 ", now) == 2.0
    assert parse_retry_after("0.25", now) == 0.25
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after("Mon, 23 Nov 2026 10:00:30 GMT", now) == 30.0
    assert parse_retry_after("Mon, 23 Nov 2026 09:59:00 GMT", now) == 0.0, "past: now"
    for garbage in (None, "", "soon", "nan", "inf", "Mon, 99 Foo 2026"):
        assert parse_retry_after(garbage, now) is None, garbage


def test_poll_schedule_grows_to_its_cap() -> None:
    schedule = PollSchedule(initial_seconds=1.0, factor=2.0, max_seconds=5.0)
    assert [schedule.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_policies_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        BreakerPolicy(failure_threshold=0)


# ---- circuit breaker --------------------------------------------------------------------


def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(BreakerPolicy(failure_threshold=3, cooldown_seconds=10), clock)


def state(b: CircuitBreaker) -> CircuitState:
    # A call, not the property: each read is a fresh look at a state that changes.
    return b.state


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(2):
        b.failed(b.acquire() or pytest.fail("closed refuses"))
    b.succeeded(b.acquire() or pytest.fail("closed refuses"))  # resets the count
    for _ in range(2):
        b.failed(b.acquire() or pytest.fail("closed refuses"))
    assert state(b) is CircuitState.CLOSED
    b.failed(b.acquire() or pytest.fail("closed refuses"))
    assert state(b) is CircuitState.OPEN
    assert b.acquire() is None
    assert b.retry_after() == 10.0
    clock.advance(4)
    assert b.retry_after() == 6.0


def test_breaker_half_opens_for_one_probe_and_closes_on_its_success() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(b.acquire() or pytest.fail("closed refuses"))
    clock.advance(9.9)
    assert (state(b), b.acquire()) == (CircuitState.OPEN, None)
    clock.advance(0.1)
    assert state(b) is CircuitState.HALF_OPEN
    probe = b.acquire()
    assert probe is not None and probe.probe
    assert b.acquire() is None, "one probe at a time"
    assert state(b) is CircuitState.HALF_OPEN
    b.succeeded(probe)
    assert state(b) is CircuitState.CLOSED
    assert b.acquire() is not None


def test_a_failed_probe_opens_the_circuit_for_another_cooldown() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(b.acquire() or pytest.fail("closed refuses"))
    clock.advance(10)
    probe = b.acquire()
    assert probe is not None
    clock.advance(2)
    b.failed(probe)
    assert state(b) is CircuitState.OPEN
    assert b.retry_after() == 10.0, "the cool-down restarts when the probe fails"


def test_an_abandoned_probe_frees_the_slot_and_late_failures_change_nothing() -> None:
    clock = FakeClock()
    b = breaker(clock)
    straggler = b.acquire()
    assert straggler is not None
    for _ in range(3):
        b.failed(b.acquire() or pytest.fail("closed refuses"))
    b.failed(straggler)  # let through before the circuit opened, failed late
    clock.advance(10)
    probe = b.acquire()
    assert probe is not None
    b.abandoned(probe)
    assert state(b) is CircuitState.HALF_OPEN
    assert b.acquire() is not None, "another probe may go"


# ---- sandbox fault specs and PNG -------------------------------------------------------


def test_fault_specs_parse() -> None:
    assert faults.parse("latency=200, 429x2, retry-after=@3") == faults.Fault(
        latency_ms=200, status=429, times=2, retry_after="@3"
    )
    assert faults.parse("503") == faults.Fault(status=503, times=None)
    assert faults.parse("hang,malformed,fail,stuck,polls=4") == faults.Fault(
        hang=True, malformed=True, fail=True, stuck=True, polls=4
    )
    assert faults.parse("incomplete,filtered") == faults.Fault(incomplete=True, filtered=True)
    for bad in ("404", "429x", "latency=fast", "polls=0", "retry-after=soon", "explode"):
        with pytest.raises(faults.FaultSpecError):
            faults.parse(bad)


def test_fault_markers_are_found_and_stripped() -> None:
    prompt = "Draw [[fault:429x1]] a cat [[fault:latency=5]]"
    assert faults.markers(prompt) == ["429x1", "latency=5"]
    assert faults.strip_markers(prompt) == "Draw a cat"


def test_fault_book_counts_per_counter_in_rule_order() -> None:
    book = faults.FaultBook()
    header = faults.Rule(faults.parse("429x1"), ("request", "a"))
    always = faults.Rule(faults.parse("500"), ("global", "1"))
    served = [book.status([header, always]) for _ in range(3)]
    assert [f.status if f else None for f in served] == [429, 500, 500]
    book.forget("global")
    assert book.status([header]) is None, "the request's own count is kept"


@given(seed=st.binary(min_size=7, max_size=32), width=st.integers(1, 40), height=st.integers(1, 40))
def test_png_render_is_a_valid_png_of_that_size(seed: bytes, width: int, height: int) -> None:
    image = read_png(png.render(seed, width, height))
    assert (image.width, image.height) == (width, height)
    assert image.chunks == [b"IHDR", b"IDAT", b"IEND"]


def test_png_render_depends_only_on_the_seed() -> None:
    assert png.render(b"0123456", 8, 8) == png.render(b"0123456", 8, 8)
    assert png.render(b"0123456", 8, 8) != png.render(b"6543210", 8, 8)
    with pytest.raises(ValueError):
        png.render(b"0123456", 0, 8)


def test_retry_after_date_is_relative_to_now() -> None:
    now = datetime.now(UTC)
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    parsed = parse_retry_after(later, now)
    assert parsed is not None and 89 <= parsed <= 90
