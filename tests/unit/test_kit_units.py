"""Unit tests of the kit's pure parts: configuration, log lines, deadline propagation,
resource closing."""

from __future__ import annotations

import json
import logging
import time

import grpc
import pytest

from kit import config, rpc
from kit.context import deadline_var, request_id_var
from kit.db import make_engine, session_factory
from kit.errors import FailedPrecondition, domain_status, error_details
from kit.logs import JsonFormatter
from kit.retry import retry_until_ready
from kit.server import Resources


def test_service_settings_defaults_and_overrides() -> None:
    defaults = config.ServiceSettings.from_env("wallet", env={})
    assert (defaults.host, defaults.port, defaults.metrics_port) == ("127.0.0.1", 50052, 9102)
    assert defaults.database_url.endswith("/var/wallet.db")
    assert defaults.nats_url == "nats://127.0.0.1:4322"
    custom = config.ServiceSettings.from_env(
        "wallet",
        env={
            "KLIK_WALLET_PORT": "6000",
            "KLIK_WALLET_DATABASE_URL": "postgresql+psycopg://db/klik_wallet",
            "KLIK_GRACE_SECONDS": "2.5",
        },
    )
    assert (custom.port, custom.grace_seconds) == (6000, 2.5)
    assert custom.database_url == "postgresql+psycopg://db/klik_wallet"


def test_a_malformed_number_names_the_variable() -> None:
    with pytest.raises(config.ConfigError, match="KLIK_AUTH_PORT must be an integer, got 'abc'"):
        config.ServiceSettings.from_env("auth", env={"KLIK_AUTH_PORT": "abc"})


def test_service_address_supports_replica_lists() -> None:
    assert config.service_address("auth", env={}) == "127.0.0.1:50051"
    replicas = config.service_address("auth", env={"KLIK_AUTH_ADDR": "10.0.0.1:1, 10.0.0.2:1"})
    assert rpc.target(replicas) == "ipv4:10.0.0.1:1,10.0.0.2:1"
    assert rpc.target("dns:///auth:50051") == "dns:///auth:50051"


def test_log_line_is_one_json_object_with_the_request_id_and_extra() -> None:
    record = logging.LogRecord("klik.test", logging.WARNING, __file__, 1, "hold %s", ("h1",), None)
    record.amount = 5
    token = request_id_var.set("req-9")
    try:
        line = JsonFormatter("wallet").format(record)
    finally:
        request_id_var.reset(token)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["level"] == "warning" and parsed["service"] == "wallet"
    assert parsed["request_id"] == "req-9" and parsed["message"] == "hold h1"
    assert parsed["extra"] == {"amount": 5}
    assert parsed["time"].endswith("+00:00")


def details(timeout: float | None) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails("/x.Y/Z", timeout, None, None, None)


def test_outgoing_calls_get_a_default_deadline_and_the_request_id() -> None:
    token = request_id_var.set("req-1")
    try:
        out = rpc._Propagate(7.0)._details(details(None))
    finally:
        request_id_var.reset(token)
    assert out.timeout == 7.0
    assert ("x-request-id", "req-1") in list(out.metadata or ())


def test_outgoing_calls_never_outlive_the_incoming_deadline() -> None:
    token = deadline_var.set(time.monotonic() + 0.5)
    try:
        out = rpc._Propagate(10.0)._details(details(None))
        explicit = rpc._Propagate(10.0)._details(details(30.0))
    finally:
        deadline_var.reset(token)
    assert out.timeout is not None and 0 < out.timeout <= 0.5
    assert explicit.timeout is not None and explicit.timeout <= 0.5


def test_error_details_round_trip_through_trailing_metadata() -> None:
    status = domain_status(
        FailedPrecondition("INSUFFICIENT_CREDITS", "need 5", details={"required": 5}), "r1"
    )
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION
    found = error_details(status.trailing_metadata)
    assert found is not None
    assert (found.reason, found.metadata) == ("INSUFFICIENT_CREDITS", {"required": "5"})
    assert error_details((("other", b"x"),)) is None


async def test_resources_run_their_closers_once_in_reverse_order() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    resources = Resources(
        config.ServiceSettings.from_env("generation", env={}), engine, session_factory(engine), None
    )
    closed: list[str] = []

    async def first() -> None:
        closed.append("first")

    async def second() -> None:
        closed.append("second")

    resources.on_close(first)
    resources.on_close(second)
    await resources.close()
    await resources.close()
    assert closed == ["second", "first"]
    await engine.dispose()


async def test_retry_until_ready_retries_failures_and_returns_the_result() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("not yet")
        return "up"

    assert await retry_until_ready("flaky dependency", flaky) == "up"
    assert attempts == 3
