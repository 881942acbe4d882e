"""The typed Python client (clients/python/klik_client) against the whole real stack
(`python -m stack` on free ports, with its default settings): accounts verified
through the mail the sandbox's sink received, a password reset by mail, the live
event stream, an image generation, a chat reply, a post published into the feed,
and errors as KlikError."""

from __future__ import annotations

import asyncio
import json
import re
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
    # The defaults a newcomer gets (tests/gateway/stack.py turns them off for the other
    # stack tests): the bonus and paid work wait for a verified email.
    with running_stack(
        tmp_path_factory.mktemp("clients"),
        KLIK_SIGNUP_BONUS_ON="verified",
        KLIK_REQUIRE_VERIFIED_EMAIL="1",
    ) as running:
        yield running


async def mailed_token(stack: RunningStack, to: str, path: str) -> str:
    """The token of the newest link to `path` mailed to `to` (waits for the mail)."""
    sandbox = f"http://127.0.0.1:{stack.env['KLIK_SANDBOX_PORT']}"
    pattern = re.compile(re.escape(stack.url + path) + r"\?token=([\w-]+)")

    async def newest() -> str:
        async with httpx.AsyncClient(timeout=10) as http:
            reply = await http.get(f"{sandbox}/_sandbox/mail", params={"to": to})
        assert reply.status_code == 200, reply.text
        texts = [message["text"] for message in reply.json()["messages"]]
        found = [m.group(1) for text in texts if (m := pattern.search(text))]
        return found[-1] if found else ""

    token: str = await wait_for(newest, within=30, message=f"a {path} mail to {to}")
    return token


@pytest.fixture
async def client(stack: RunningStack) -> AsyncIterator[KlikClient]:
    email = f"client-{uuid.uuid4().hex[:8]}@example.com"
    async with KlikClient(stack.url) as klik:
        user = await klik.register(email, PASSWORD, "Client Tester")
        assert user["email"] == email and user.get("email_verified") is not True
        tokens = await klik.login(email, PASSWORD)
        assert tokens["user"]["id"] == user["id"]
        verified = await klik.verify_email(await mailed_token(stack, email, "/verify-email"))
        assert verified["id"] == user["id"] and verified["email_verified"] is True
        await klik.refresh()  # an access token that says verified
        yield klik


@pytest.mark.slow
async def test_verification_pays_the_bonus_and_a_reset_link_sets_a_new_password(
    stack: RunningStack,
) -> None:
    email = f"reset-{uuid.uuid4().hex[:8]}@example.com"
    async with KlikClient(stack.url) as klik:
        await klik.register(email, PASSWORD)
        await klik.login(email, PASSWORD)
        with pytest.raises(KlikError) as unverified:
            await klik.create_generation("IMAGE", "a red square", idempotency_key=uuid.uuid4().hex)
        assert (unverified.value.http_status, unverified.value.code) == (403, "EMAIL_NOT_VERIFIED")
        await klik.verify_email(await mailed_token(stack, email, "/verify-email"))
        assert (await klik.me())["email_verified"] is True

        async def bonus_paid() -> bool:
            return int((await klik.wallet())["balance"]) == 100

        assert await wait_for(bonus_paid, within=30, message="the signup bonus")
        with pytest.raises(KlikError) as again:
            await klik.resend_verification()
        assert (again.value.http_status, again.value.code) == (400, "EMAIL_ALREADY_VERIFIED")

        await klik.request_password_reset(email)
        token = await mailed_token(stack, email, "/reset-password")
        with pytest.raises(KlikError) as weak:
            await klik.confirm_password_reset(token, "short")
        assert (weak.value.http_status, weak.value.code) == (400, "WEAK_PASSWORD")
        await klik.confirm_password_reset(token, "a brand new passphrase")
        with pytest.raises(KlikError) as spent:
            await klik.confirm_password_reset(token, "another new passphrase")
        assert (spent.value.http_status, spent.value.code) == (400, "INVALID_RESET_TOKEN")
        with pytest.raises(KlikError) as old:
            await klik.login(email, PASSWORD)
        assert old.value.http_status == 401
        assert (await klik.login(email, "a brand new passphrase"))["user"]["email"] == email


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
