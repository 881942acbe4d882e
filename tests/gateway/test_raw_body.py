"""Raw-body routes: an RPC whose request holds a `google.api.HttpBody` as its body
gets the bytes exactly as sent (whatever their type, never parsed as JSON) and the
headers its `(klik.options.v1.forward_headers)` names, nothing else — over a real
gateway and real gRPC to a servicer that records what it got."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
import uvicorn

from gateway.app import create_app
from gateway.server import GatewayServer
from gateway.settings import GatewaySettings
from gateway.transcoding.routes import build_routes
from kit.errors import InvalidArgument, domain_status
from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.helpers import free_port, wait_for

WALLET = wallet_pb2.DESCRIPTOR.services_by_name["WalletService"]


class Recorder(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self) -> None:
        self.seen: list[tuple[bytes, str, dict[str, str]]] = []

    async def StripeWebhook(
        self, request: wallet_pb2.StripeWebhookRequest, context: Any
    ) -> wallet_pb2.StripeWebhookResponse:
        metadata = {k: str(v) for k, v in context.invocation_metadata() or ()}
        self.seen.append((request.body.data, request.body.content_type, metadata))
        if metadata.get("stripe-signature") != "t=1,v1=good":
            await context.abort_with_status(
                domain_status(InvalidArgument("INVALID_SIGNATURE", "bad signature"))
            )
        return wallet_pb2.StripeWebhookResponse()


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, Recorder]]:
    recorder = Recorder()
    server = grpc.aio.server()
    wallet_pb2_grpc.add_WalletServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    env = {
        "KLIK_WALLET_ADDR": f"127.0.0.1:{port}",
        "KLIK_AUTH_ADDR": f"127.0.0.1:{free_port()}",
        "KLIK_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        "KLIK_GATEWAY_MAX_BODY_BYTES": "1024",
    }
    app = create_app(GatewaySettings.from_env(env), {"wallet": (WALLET,)})
    http_port = free_port()
    gateway = GatewayServer(uvicorn.Config(app, port=http_port, log_config=None), app)
    task = asyncio.create_task(gateway.serve())
    await wait_for(lambda: gateway.started, message="gateway started")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as client:
        yield client, recorder
    gateway.should_exit = True
    await asyncio.wait_for(task, 10)
    await server.stop(None)


def test_the_route_is_derived_from_the_proto() -> None:
    routes = build_routes({"wallet": (WALLET,)})
    [route] = [r for r in routes if r.path == "/v1/webhooks/stripe"]
    assert route.raw_body == "body"
    assert route.forward_headers == ("stripe-signature",)
    others = [r for r in routes if r is not route]
    assert all(not r.raw_body and not r.forward_headers for r in others)


async def test_the_exact_bytes_and_the_named_headers_reach_the_service(
    served: tuple[httpx.AsyncClient, Recorder],
) -> None:
    client, recorder = served
    body = b'{"b": 1,  "a":\n 2}\x00\xff not even JSON'
    reply = await client.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={
            "content-type": "application/octet-stream",
            "stripe-signature": "t=1,v1=good",
            "x-other": "not forwarded",
        },
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {}
    [(data, content_type, metadata)] = recorder.seen
    assert data == body
    assert content_type == "application/octet-stream"
    assert metadata["stripe-signature"] == "t=1,v1=good"
    assert "x-other" not in metadata


async def test_a_refused_signature_is_400_and_an_oversized_body_413(
    served: tuple[httpx.AsyncClient, Recorder],
) -> None:
    client, recorder = served
    bad = await client.post(
        "/v1/webhooks/stripe", content=b"{}", headers={"stripe-signature": "t=1,v1=bad"}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "INVALID_SIGNATURE"
    large = await client.post(
        "/v1/webhooks/stripe", content=b"x" * 2000, headers={"stripe-signature": "t=1,v1=good"}
    )
    assert large.status_code == 413
    assert len(recorder.seen) == 1  # the oversized body never reached the service
