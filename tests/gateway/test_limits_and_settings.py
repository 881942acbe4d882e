"""Token buckets on a fake clock, and the gateway's settings from the environment."""

from __future__ import annotations

import pytest

from gateway.ratelimit import Rate, RateLimiter, TokenBuckets
from gateway.settings import GatewaySettings
from kit.config import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_evenly() -> None:
    clock = Clock()
    limiter = RateLimiter({"read": Rate(3, 6.0)}, clock=clock)  # 3 per 6 s: one every 2 s
    assert [limiter.check("read", ["a"]) for _ in range(3)] == [0, 0, 0]
    assert limiter.check("read", ["a"]) == 2
    clock.now += 1.0
    assert limiter.check("read", ["a"]) == 1  # 1 s to go: Retry-After rounds up
    clock.now += 1.0
    assert limiter.check("read", ["a"]) == 0
    assert limiter.check("read", ["a"]) == 2


def test_keys_and_classes_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter({"read": Rate(1, 60.0), "write": None}, clock=clock)
    assert limiter.check("read", ["a"]) == 0
    assert limiter.check("read", ["a"]) == 60
    assert limiter.check("read", ["b"]) == 0
    assert all(limiter.check("write", ["a"]) == 0 for _ in range(100))  # unlimited


def test_a_request_takes_from_every_key_or_from_none() -> None:
    clock = Clock()
    limiter = RateLimiter({"read": Rate(1, 10.0)}, clock=clock)
    assert limiter.check("read", ["user:u"]) == 0
    assert limiter.check("read", ["addr:x", "user:u"]) == 10
    assert limiter.check("read", ["addr:x"]) == 0  # the refused request took nothing


def test_full_buckets_are_forgotten_to_bound_memory() -> None:
    clock = Clock()
    buckets = TokenBuckets(Rate(1, 1.0), clock=clock, max_keys=10)
    for index in range(10):
        buckets.take(f"k{index}", clock.now)
    clock.now += 5.0  # every bucket refilled
    buckets.take("new", clock.now)
    assert len(buckets) == 1


@pytest.mark.parametrize(
    ("text", "rate"),
    [("60/60", Rate(60, 60.0)), ("5/0.5", Rate(5, 0.5)), ("0", None), ("off", None)],
)
def test_rates_parse(text: str, rate: Rate | None) -> None:
    assert Rate.parse("KLIK_X", text) == rate


@pytest.mark.parametrize("text", ["60", "x/60", "60/0", "-1/5", "1/-1"])
def test_bad_rates_name_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match="KLIK_X"):
        Rate.parse("KLIK_X", text)


def test_gateway_settings_from_the_environment() -> None:
    defaults = GatewaySettings.from_env({})
    assert defaults.timeout_seconds == 10.0
    assert defaults.cors_origins == ()
    assert defaults.rate_limits == {
        "auth": Rate(30, 60.0),
        "read": Rate(1200, 60.0),
        "write": Rate(300, 60.0),
    }
    custom = GatewaySettings.from_env(
        {
            "KLIK_GATEWAY_TIMEOUT_SECONDS": "2.5",
            "KLIK_GATEWAY_CORS_ORIGINS": "https://app.example, http://localhost:3000/ ,",
            "KLIK_GATEWAY_RATE_READ": "0",
            "KLIK_GATEWAY_RATE_AUTH": "5/1",
        }
    )
    assert custom.timeout_seconds == 2.5
    assert custom.cors_origins == ("https://app.example", "http://localhost:3000")
    assert custom.rate_limits["read"] is None and custom.rate_limits["auth"] == Rate(5, 1.0)


def test_user_rates_deadlines_and_event_stream_settings_come_from_the_env() -> None:
    settings = GatewaySettings.from_env(
        {
            "KLIK_GATEWAY_USER_RATE_READ": "10/1",
            "KLIK_GATEWAY_USER_RATE_WRITE": "off",
            "KLIK_GATEWAY_TIMEOUT_SECONDS": "7",
            "KLIK_GATEWAY_TIMEOUT_WRITE": "20",
            "KLIK_GATEWAY_SSE_HEARTBEAT_SECONDS": "5",
            "KLIK_GATEWAY_SSE_MAX_PER_USER": "2",
        }
    )
    assert settings.user_rate_limits == {"read": Rate(10, 1.0), "write": None}
    assert (settings.timeout("read"), settings.timeout("write")) == (7.0, 20.0)
    assert settings.events.heartbeat_seconds == 5.0 and settings.events.max_per_user == 2
    defaults = GatewaySettings.from_env({})
    assert defaults.user_rate_limits["read"] == Rate(600, 60.0)
    assert defaults.premium_rate_limits == {"read": Rate(1200, 60.0), "write": Rate(300, 60.0)}
    premium = GatewaySettings.from_env({"KLIK_GATEWAY_PREMIUM_RATE_WRITE": "off"})
    assert premium.premium_rate_limits["write"] is None
    assert defaults.timeout("auth") == 10.0


def test_a_request_draws_on_its_address_and_its_users_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter({"read": Rate(5, 60.0), "user:read": Rate(1, 60.0)}, clock=clock)
    assert limiter.check_all([("read", "addr:a"), ("user:read", "u1")]) == 0
    assert limiter.check_all([("read", "addr:b"), ("user:read", "u1")]) == 60  # same user
    assert limiter.check_all([("read", "addr:a"), ("user:read", "u2")]) == 0
    assert limiter.check_all([("read", "addr:a"), ("other", "x")]) == 0  # unlimited class
