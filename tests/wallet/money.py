"""The money-in stack for the Stripe tests: the wallet service (real gRPC, the test
database), the sandbox's Stripe on a real socket delivering signed webhooks to a
real gateway in front of the wallet, all in-process; the wallet calls the sandbox
through the official stripe library."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from gateway.app import create_app as create_gateway
from gateway.server import GatewayServer
from gateway.settings import GatewaySettings
from sandbox.app import create_app as create_sandbox
from sandbox.stripe import Stripe
from services.wallet.store import ledger, payments, stripe_events
from tests.helpers import free_port, wait_for
from tests.tokens import JwksServer
from tests.wallet.conftest import StartWallet, WalletStack, new_user

SECRET = "whsec_test_secret"
APP = "http://app.test"
# 200 requests at once through one client.
LIMITS = httpx.Limits(max_connections=400, max_keepalive_connections=50)


@dataclass
class Money:
    wallet: WalletStack
    stripe: Stripe
    gateway: httpx.AsyncClient  # no Authorization
    sandbox: httpx.AsyncClient

    def auth(self, user_id: str, role: str = "user") -> dict[str, str]:
        token = self.wallet.authority.access_token(user_id, role)
        return {"Authorization": f"Bearer {token}"}

    async def buy(self, user_id: str, key: str, pack_id: str = "starter") -> str:
        """Check out and pay a pack, and wait for its webhooks; the payment id."""
        made = await self.checkout(user_id, key, pack_id)
        paid = await self.act(made["session_id"], "pay")
        assert paid.status_code == 200, paid.text
        await self.delivered()
        session_id: str = made["session_id"]
        return session_id

    def charge_of(self, session_id: str) -> str:
        """The Stripe charge id of a paid session."""
        intent = self.stripe.payment_intents[self.stripe.sessions[session_id]["payment_intent"]]
        charge: str = intent["latest_charge"]
        return charge

    async def wallet_of(self, user_id: str) -> dict[str, Any]:
        reply = await self.gateway.get("/v1/wallet", headers=self.auth(user_id))
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    async def user(self) -> str:
        user_id = new_user()
        await self.wallet.register(user_id)
        return user_id

    async def checkout(self, user_id: str, key: str, pack_id: str = "starter") -> dict[str, Any]:
        reply = await self.gateway.post(
            "/v1/wallet/checkout",
            json={
                "pack_id": pack_id,
                "success_url": f"{APP}/paid?session={{CHECKOUT_SESSION_ID}}",
                "cancel_url": f"{APP}/cancelled",
                "idempotency_key": key,
            },
            headers=self.auth(user_id),
        )
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    async def act(self, session_id: str, action: str, **body: Any) -> httpx.Response:
        return await self.sandbox.post(
            f"/_sandbox/stripe/checkout/{session_id}:{action}", json=body
        )

    async def events(self, kind: str = "") -> list[dict[str, Any]]:
        reply = await self.sandbox.get("/_sandbox/stripe/events", params={"type": kind})
        events: list[dict[str, Any]] = reply.json()["events"]
        return events

    async def delivered(self) -> None:
        """Wait until every webhook delivery in flight has finished."""
        await asyncio.wait_for(self.stripe.idle(), 60)

    async def balance(self, user_id: str) -> int:
        reply = await self.gateway.get("/v1/wallet", headers=self.auth(user_id))
        assert reply.status_code == 200, reply.text
        return int(reply.json()["balance"])

    async def purchases(self, session_id: str) -> int:
        """Ledger rows the session's payment wrote."""
        async with self.wallet.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(ledger)
                .where(ledger.c.reference == session_id, ledger.c.kind == "purchase")
            )
        return int(count or 0)

    async def payment_status(self, session_id: str) -> str | None:
        async with self.wallet.engine.connect() as conn:
            status: str | None = await conn.scalar(
                select(payments.c.status).where(payments.c.id == session_id)
            )
        return status

    async def recorded(self, event_id: str) -> int:
        async with self.wallet.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(stripe_events)
                .where(stripe_events.c.id == event_id)
            )
        return int(count or 0)


async def _serve(app: Any, port: int, server_class: Any = uvicorn.Server) -> Any:
    # Long keep-alive: under load a client must not reuse a connection the server
    # is just closing.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, timeout_keep_alive=120
    )
    server = server_class(config, app) if server_class is GatewayServer else server_class(config)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started, 30, message="server started")
    return server, task


@pytest.fixture
async def money(start_wallet: StartWallet, jwks: JwksServer, nats_url: str) -> AsyncIterator[Money]:
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    wallet = await start_wallet(
        stripe_api_base=sandbox_url,
        stripe_webhook_secret=SECRET,
        checkout_return_origins=(APP,),
    )
    stripe = Stripe(f"{gateway_url}/v1/webhooks/stripe", SECRET)
    stripe.retry_base = 0.05
    sandbox_app = create_sandbox()
    sandbox_app.state.stripe = stripe
    sandbox_server, sandbox_task = await _serve(sandbox_app, sandbox_port)
    env = {
        "KLIK_AUTH_ADDR": jwks.address,
        "KLIK_WALLET_ADDR": f"127.0.0.1:{wallet.servers[0].port}",
        "KLIK_CONTENT_ADDR": f"127.0.0.1:{free_port()}",
        "KLIK_GENERATION_ADDR": f"127.0.0.1:{free_port()}",
        "KLIK_NATS_URL": nats_url,
        # Everything shares this one process: give the 200-request test time.
        "KLIK_GATEWAY_TIMEOUT_SECONDS": "60",
        # The concurrency tests send many requests from one address.
        **{
            f"KLIK_GATEWAY_{who}RATE_{what}": "off"
            for who in ("", "USER_", "PREMIUM_")
            for what in ("AUTH", "READ", "WRITE")
        },
    }
    gateway_app = create_gateway(GatewaySettings.from_env(env))
    gateway_server, gateway_task = await _serve(gateway_app, gateway_port, GatewayServer)
    async with (
        httpx.AsyncClient(base_url=gateway_url, timeout=90, limits=LIMITS) as gateway,
        httpx.AsyncClient(base_url=sandbox_url, timeout=90, limits=LIMITS) as sandbox,
    ):
        yield Money(wallet, stripe, gateway, sandbox)
    await stripe.close()
    for server, task in ((gateway_server, gateway_task), (sandbox_server, sandbox_task)):
        server.should_exit = True
        await asyncio.wait_for(task, 10)
