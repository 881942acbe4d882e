"""The typed Python client (clients/python/klik_client) against the whole real stack
(`python -m stack` on free ports): accounts, the live event stream, an image
generation, a chat reply, a post published into the feed, and errors as KlikError."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from klik_client import ROUTES, KlikClient, KlikError, parse_events
from klik_client.types import Asset, Chat

from tests.gateway.stack import RunningStack, running_stack
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def test_every_route_of_the_client_is_in_the_openapi_document() -> None:
    document = json.loads((ROOT / "web" / "openapi.json").read_text())
    for name, (method, path) in ROUTES.items():
        assert method.lower() in document["paths"].get(path, {}), (name, method, path)


async def test_server_sent_events_parse_with_heartbeats_and_multiline_data() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in [": hb", "", "id: 4", "event: wallet.changed", 'data: {"a":', "data: 1}", ""]:
            yield line

    events = [e async for e in parse_events(lines())]
    assert events == [{"id": "4", "type": "wallet.changed", "data": {"a": 1}}]


async def test_an_answer_that_is_not_klik_json_is_still_a_klik_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="bad gateway"))
    async with KlikClient("http://klik.test", transport=transport) as client:
        with pytest.raises(KlikError) as failure:
            await client.pricing()
    assert (failure.value.http_status, failure.value.code) == (502, "HTTP_502")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("clients")) as running:
        yield running


@pytest.fixture
async def client(stack: RunningStack) -> AsyncIterator[KlikClient]:
    email = f"client-{uuid.uuid4().hex[:8]}@example.com"
    async with KlikClient(stack.url) as klik:
        user = await klik.register(email, PASSWORD, "Client Tester")
        assert user["email"] == email
        tokens = await klik.login(email, PASSWORD)
        assert tokens["user"]["id"] == user["id"]
        yield klik


@pytest.mark.slow
async def test_accounts_wallet_and_errors(client: KlikClient, stack: RunningStack) -> None:
    me = await client.me()
    assert me["display_name"] == "Client Tester"
    wallet = await client.wallet()
    assert wallet["user_id"] == me["id"] and int(wallet["available"]) > 0
    assert (await client.transactions()).items, "the signup bonus is a ledger row"
    assert any(p["kind"] == "IMAGE" for p in await client.pricing())
    assert await client.providers()

    # A refreshed session keeps working; an expired access token is refreshed on a 401.
    old = client.session.access_token
    await client.refresh()
    assert client.session.access_token != old
    client.session.access_token = "not-a-token"
    assert (await client.me())["id"] == me["id"]

    async with KlikClient(stack.url) as stranger:
        with pytest.raises(KlikError) as wrong:
            await stranger.login(me["email"], "not the password")
    assert wrong.value.http_status == 401 and wrong.value.message
    with pytest.raises(KlikError) as unknown:
        await client.create_post("with a stranger's asset", asset_ids=["no-such-asset"])
    assert (unknown.value.http_status, unknown.value.code) == (400, "UNKNOWN_ASSET")
    assert unknown.value.request_id


@pytest.mark.slow
async def test_generate_chat_and_post_into_the_feed(client: KlikClient) -> None:
    async with asyncio.timeout(60):
        async with client.event_stream() as events:
            job = await client.create_generation(
                "IMAGE", "a red square", idempotency_key=uuid.uuid4().hex
            )
            seen: list[str] = []
            async for event in events:
                seen.append(event["type"])
                if event["type"] == "generation.job.succeeded":
                    assert event["data"]["payload"]["job"]["id"] == job["id"]
                    break
        assert seen[0] in ("generation.job.queued", "wallet.changed"), seen
        done = await client.wait_for_job(job["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["result"]["asset_url"].startswith(client.base_url)

    asset = await wait_for(lambda: _asset_of(client, job["id"]), within=30, message="asset")
    assert asset is not None
    post = await client.create_post("A red square", "from the client", [asset["id"]])
    assert post["status"] == "draft"
    published = await client.publish_post(post["id"])
    assert published["status"] == "published"
    feed = await client.posts()
    assert post["id"] in [p["id"] for p in feed.items]

    chat = await client.create_chat("client chat")
    sent = await client.send_message(chat["id"], "hello", idempotency_key=uuid.uuid4().hex)
    assert sent["job_id"]
    replied = await wait_for(lambda: _reply(client, chat["id"]), within=30, message="reply")
    assert replied is not None and replied["messages"][-1]["content"]


async def _asset_of(client: KlikClient, job_id: str) -> Asset | None:
    return next((a for a in (await client.assets()).items if a.get("job_id") == job_id), None)


async def _reply(client: KlikClient, chat_id: str) -> Chat | None:
    chat = await client.chat(chat_id)
    messages = chat.get("messages", [])
    return chat if len(messages) == 2 and messages[-1].get("role") == "assistant" else None
