"""Assistants and managed chats through the gateway, on every real service
(`python -m stack`): one user shares an assistant, another finds it in the public
list, chats with it (the provider sandbox shows the system prompt, model and
temperature each reply was generated with), follows its edits, renames and deletes
the chat."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.stack import RunningStack, running_stack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

FRESH = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    off = {
        f"KLIK_GATEWAY_{kind}_{cls}": "0"
        for kind, classes in (("RATE", ("AUTH", "READ", "WRITE")), ("USER_RATE", ("READ", "WRITE")))
        for cls in classes
    }
    with running_stack(tmp_path_factory.mktemp("assistants"), **off) as running:
        yield running


@pytest.fixture
async def clients(stack: RunningStack) -> AsyncIterator[list[httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []
    for _ in range(2):
        email = f"assist-{uuid.uuid4().hex[:8]}@example.com"
        token = await asyncio.to_thread(stack.user, email)
        made.append(
            httpx.AsyncClient(
                base_url=stack.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
                limits=FRESH,
            )
        )
    yield made
    for client in made:
        await client.aclose()


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def refused(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code


async def test_a_shared_assistant_through_the_gateway(
    stack: RunningStack, clients: list[httpx.AsyncClient]
) -> None:
    owner, user = clients
    sandbox = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.env['KLIK_SANDBOX_PORT']}", timeout=10, limits=FRESH
    )
    providers = ok(await owner.get("/v1/providers"))["providers"]
    model = next(
        m["id"]
        for p in providers
        if p["name"] == "sandbox"
        for m in p["models"]
        if "CHAT" in m["kinds"]
    )

    body = {
        "name": "Tutor",
        "description": "explains things",
        "instructions": "Explain like I am five.",
        "model": model,
        "temperature": 0.4,
        "visibility": "public",
        "idempotency_key": "tutor-1",
    }
    refused(
        await owner.post("/v1/assistants", json={**body, "temperature": 3}),
        400,
        "INVALID_TEMPERATURE",
    )
    assistant = ok(await owner.post("/v1/assistants", json=body))
    assert ok(await owner.post("/v1/assistants", json=body))["id"] == assistant["id"]
    owner_id = assistant["owner_id"]

    public = ok(await user.get("/v1/assistants:public"))["assistants"]
    found = next(a for a in public if a["id"] == assistant["id"])
    assert found["owner"]["user_id"] == owner_id
    assert found["name"] == "Tutor" and found.get("instructions", "") == ""  # not theirs

    chat = ok(await user.post("/v1/chats", json={"assistant_id": assistant["id"]}))
    assert (chat["assistant_id"], chat["model"]) == (assistant["id"], model)

    async def asked(question: str, turns: int) -> dict[str, Any]:
        ok(await user.post(f"/v1/chats/{chat['id']}/messages", json={"content": question}))

        async def replied() -> bool:
            messages = ok(await user.get(f"/v1/chats/{chat['id']}")).get("messages", [])
            return len(messages) >= 2 * turns

        await wait_for(replied, 60, message=f"{question!r} answered")
        log = ok(await sandbox.get("/_sandbox/requests", params={"path": "/v1/chat/completions"}))
        for entry in log["requests"]:
            sent = entry["json"]
            if sent["messages"][-1]["content"] == question:
                return dict(sent)
        raise AssertionError(f"the provider never got {question!r}")

    sent = await asked("why is the sky blue?", 1)
    assert sent["messages"][0] == {"role": "system", "content": "Explain like I am five."}
    assert (sent["model"], sent["temperature"]) == (model, 0.4)

    # The owner's edit (the body's keys are the mask) reaches the chat's next reply.
    edited = ok(
        await owner.patch(
            f"/v1/assistants/{assistant['id']}", json={"instructions": "Answer in one line."}
        )
    )
    assert (edited["instructions"], edited["temperature"]) == ("Answer in one line.", 0.4)
    refused(
        await user.patch(f"/v1/assistants/{assistant['id']}", json={"name": "mine"}),
        403,
        "NOT_OWNER",
    )
    sent = await asked("and why is grass green?", 2)
    assert sent["messages"][0] == {"role": "system", "content": "Answer in one line."}

    # The chat's own management: rename, then delete.
    renamed = ok(await user.patch(f"/v1/chats/{chat['id']}", json={"title": "colours"}))
    assert renamed["title"] == "colours"
    assert ok(await user.delete(f"/v1/chats/{chat['id']}")) == {}
    refused(await user.get(f"/v1/chats/{chat['id']}"), 404, "CHAT_NOT_FOUND")
    listed = ok(await user.get("/v1/chats")).get("chats", [])
    assert chat["id"] not in [c["id"] for c in listed]

    ok(await owner.delete(f"/v1/assistants/{assistant['id']}"))
    refused(await user.get(f"/v1/assistants/{assistant['id']}"), 404, "ASSISTANT_NOT_FOUND")
    refused(
        await user.post("/v1/chats", json={"assistant_id": assistant["id"]}),
        404,
        "ASSISTANT_NOT_FOUND",
    )
    await sandbox.aclose()
