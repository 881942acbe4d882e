"""The gateway's own routes and error shape (API.md § Conventions, § Gateway's own routes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from kit.config import SERVICE_PORTS
from tests.helpers import free_port, wait_for


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on a real socket, with its upstreams and NATS on ports where nothing
    listens: it must stay up and say what is missing."""
    env = {f"KLIK_{s.upper()}_PORT": str(free_port()) for s in SERVICE_PORTS}
    env["KLIK_NATS_URL"] = f"nats://127.0.0.1:{free_port()}"
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(GatewaySettings.from_env(env)), port=port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started, message="gateway started")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        yield http
    server.should_exit = True
    await asyncio.wait_for(serving, 10)


def assert_error_shape(body: dict[str, object], code: str, status: str) -> None:
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"code", "status", "message", "details", "request_id"}
    assert (error["code"], error["status"]) == (code, status)
    assert error["message"] and error["request_id"]


async def test_healthz_is_200_while_the_process_serves(client: httpx.AsyncClient) -> None:
    reply = await client.get("/healthz")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


async def test_readyz_is_503_and_names_each_dependency_when_they_are_down(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.get("/readyz")
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "not_ready"
    assert set(body["dependencies"]) == {*SERVICE_PORTS, "nats"}
    assert body["dependencies"]["nats"] == "DISCONNECTED"
    assert all(
        state.startswith("UNREACHABLE")
        for name, state in body["dependencies"].items()
        if name != "nats"
    )


async def test_unknown_route_is_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    reply = await client.get("/v1/nothing-here")
    assert reply.status_code == 404
    assert_error_shape(reply.json(), "NOT_FOUND", "NOT_FOUND")


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    reply = await client.post("/healthz")
    assert reply.status_code == 405
    assert "GET" in reply.headers["allow"]
    assert_error_shape(reply.json(), "METHOD_NOT_ALLOWED", "INVALID_ARGUMENT")


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/nope", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    assert given.json()["error"]["request_id"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    hostile = "<script>" * 20
    replaced = await client.get("/healthz", headers={"X-Request-ID": hostile})
    assert replaced.headers["x-request-id"] != hostile
    assert len(replaced.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/no/such/route")
    text = (await client.get("/metrics")).text
    assert 'klik_gateway_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/route" not in text
