"""Plans end to end through every real service (`python -m stack`, its sandbox's
Stripe delivering signed webhooks to the gateway): a user subscribes to the premium
plan, pays on the sandbox's Checkout page, gets the period's allowance; the wallet's
`wallet.plan_changed` reaches auth over NATS, which gives the role `premium`; the
next access token opens a premium-only model that was refused before; cancelling in
the billing portal takes the role away again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.stack import RunningStack, running_stack
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
ALLOWANCE = 2000  # the default `premium` plan's


@pytest.fixture(scope="module")
def plans_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The stack with one premium-only model, on the sandbox's OpenAI-shaped API."""
    sandbox_port = free_port()
    providers = [
        {
            "name": "plus",
            "type": "openai",
            "base_url": f"http://127.0.0.1:{sandbox_port}/v1",
            "models": [{"id": "gold-model", "premium": True}],
        }
    ]
    with running_stack(
        tmp_path_factory.mktemp("plans"),
        KLIK_SANDBOX_PORT=str(sandbox_port),
        KLIK_LLM_PROVIDERS=json.dumps(providers),
    ) as running:
        yield running


class Account:
    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
        self.client = client
        self.tokens = tokens

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    async def refresh(self) -> str:
        """Refresh the tokens; the role the new access token carries."""
        reply = await self.client.post(
            "/v1/auth/refresh", json={"refresh_token": self.tokens["refresh_token"]}
        )
        assert reply.status_code == 200, reply.text
        self.tokens = reply.json()
        role: str = self.tokens["user"]["role"]
        return role

    async def role_becomes(self, role: str) -> None:
        async def reached() -> bool:
            return await self.refresh() == role

        await wait_for(reached, 60, interval=0.2, message=f"role {role}")

    async def gold(self, key: str) -> httpx.Response:
        return await self.client.post(
            "/v1/generations",
            json={
                "kind": "TEXT",
                "prompt": "a premium question",
                "provider": "plus",
                "model": "gold-model",
                "idempotency_key": key,
            },
            headers=self.headers,
        )

    async def subscription(self) -> dict[str, Any]:
        reply = await self.client.get("/v1/wallet/subscription", headers=self.headers)
        body: dict[str, Any] = reply.json() if reply.status_code == 200 else {}
        return body


async def test_a_premium_plan_unlocks_premium_models_until_cancelled(
    plans_stack: RunningStack,
) -> None:
    email = f"plans-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=plans_stack.url, timeout=30) as client:
        registered = await client.post(
            "/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Subscriber"},
        )
        assert registered.status_code == 200, registered.text
        login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        account = Account(client, login.json())
        assert account.tokens["user"]["role"] == "user"

        async def wallet() -> dict[str, Any] | None:
            reply = await client.get("/v1/wallet", headers=account.headers)
            return reply.json() if reply.status_code == 200 else None

        opened = await wait_for(wallet, 30, message="wallet opened")
        balance = int(opened["balance"])

        refused = await account.gold("before")
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "PREMIUM_REQUIRED"

        made = await client.post(
            "/v1/wallet/subscribe",
            json={
                "plan_id": "premium",
                "success_url": f"{plans_stack.url}/subscribed",
                "cancel_url": f"{plans_stack.url}/cancelled",
                "idempotency_key": "plan-1",
            },
            headers=account.headers,
        )
        assert made.status_code == 200, made.text
        paid = await client.post(made.json()["url"] + "/pay", follow_redirects=False)
        assert paid.status_code == 303, paid.text

        async def active() -> dict[str, Any] | None:
            shown = await account.subscription()
            return shown if shown.get("active") else None

        shown = await wait_for(active, 60, message="subscription active")
        assert shown["plan_id"] == "premium"

        async def granted() -> bool:
            now = await wallet()
            return now is not None and int(now["balance"]) == balance + ALLOWANCE

        await wait_for(granted, 30, message="allowance granted")
        await account.role_becomes("premium")

        served = await account.gold("after")
        assert served.status_code == 200, served.text
        job_id = served.json()["id"]

        async def succeeded() -> bool:
            reply = await client.get(f"/v1/generations/{job_id}", headers=account.headers)
            return bool(reply.json()["status"] == "SUCCEEDED")

        await wait_for(succeeded, 60, message="premium job succeeded")

        portal = await client.post(
            "/v1/wallet/billing-portal",
            json={"return_url": f"{plans_stack.url}/account"},
            headers=account.headers,
        )
        assert portal.status_code == 200, portal.text
        cancelled = await client.post(
            f"{portal.json()['url']}/subscriptions/{shown['id']}/cancel", follow_redirects=False
        )
        assert cancelled.status_code == 303

        async def ended() -> bool:
            return (await account.subscription()).get("status") == "canceled"

        await wait_for(ended, 60, message="subscription cancelled")
        await account.role_becomes("user")
        again = await account.gold("cancelled")
        assert again.status_code == 403
        assert again.json()["error"]["code"] == "PREMIUM_REQUIRED"
