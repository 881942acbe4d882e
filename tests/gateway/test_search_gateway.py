"""Search and managed lessons through the gateway, on every real service (`python -m
stack`, PostgreSQL when reachable): routes, query parameters, FieldMask from the
PATCH body's keys, and the HTTP statuses and error codes of the refusals. A lesson
here is really generated (a TEXT job on the provider sandbox, charged)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.gateway.stack import RunningStack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

FRESH = httpx.Limits(max_keepalive_connections=0)


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def refused(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code, reply.text


@pytest.fixture
async def clients(real_stack: RunningStack) -> AsyncIterator[list[httpx.AsyncClient]]:
    made = []
    for _ in range(2):
        token = await asyncio.to_thread(
            real_stack.user, f"search-{uuid.uuid4().hex[:8]}@example.com"
        )
        made.append(
            httpx.AsyncClient(
                base_url=real_stack.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=15,
                limits=FRESH,
            )
        )
    yield made
    for client in made:
        await client.aclose()


def word() -> str:
    return "g" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


async def test_search_posts_over_http(clients: list[httpx.AsyncClient]) -> None:
    ann, bob = clients
    key = word()
    ids = []
    for title, body in ((f"{key} in the title", "x"), ("plain", f"a {key} in the body")):
        post = ok(await ann.post("/v1/posts", json={"title": title, "body": body}))
        ok(await ann.post(f"/v1/posts/{post['id']}:publish", json={}))
        ids.append(post["id"])
    ok(await ann.post("/v1/posts", json={"title": key, "body": "a draft"}))

    first = ok(await bob.get("/v1/search", params={"q": key, "type": "posts", "page_size": 1}))
    assert [hit["post"]["id"] for hit in first["hits"]] == ids[:1]
    assert first["hits"][0]["title_match"] is True
    assert first["hits"][0]["post"]["author"]["user_id"]
    # Search syntax is plain words, and a cursor serves only its own query.
    refused(
        await bob.get(
            "/v1/search",
            params={
                "q": f'"{key}" NEAR *',
                "type": "posts",
                "page_token": first["next_page_token"],
            },
        ),
        400,
        "INVALID_PAGE_TOKEN",
    )
    token = first["next_page_token"]
    rest = ok(await bob.get("/v1/search", params={"q": key, "type": "posts", "page_token": token}))
    assert [hit["post"]["id"] for hit in rest["hits"]] == ids[1:]
    assert f"<mark>{key}</mark>" in rest["hits"][0]["snippet"]
    assert rest["next_page_token"] == ""

    refused(await bob.get("/v1/search", params={"q": "", "type": "posts"}), 400, "INVALID_QUERY")
    refused(
        await bob.get("/v1/search", params={"q": "x" * 201, "type": "posts"}), 400, "INVALID_QUERY"
    )
    refused(
        await bob.get("/v1/search", params={"q": key, "type": "users"}), 400, "INVALID_SEARCH_TYPE"
    )
    anonymous = await bob.get(
        "/v1/search", params={"q": key, "type": "posts"}, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401, anonymous.text


async def test_lessons_managed_over_http(clients: list[httpx.AsyncClient]) -> None:
    ann, bob = clients
    key = word()
    made = ok(
        await ann.post(
            "/v1/lessons",
            json={
                "topic": f"{key} basics",
                "content_type": "quiz",
                "difficulty": 4,
                "idempotency_key": str(uuid.uuid4()),
            },
        )
    )

    async def ready() -> bool:
        status = ok(await ann.get(f"/v1/lessons/{made['id']}"))["status"]
        assert status in ("generating", "ready"), status
        return bool(status == "ready")

    await wait_for(ready, 60, message="the lesson's job wrote it")
    # Not published yet: others get 404, and search does not find it.
    refused(await bob.get(f"/v1/lessons/{made['id']}"), 404, "LESSON_NOT_FOUND")
    refused(await bob.delete(f"/v1/lessons/{made['id']}"), 404, "LESSON_NOT_FOUND")
    assert ok(await bob.get("/v1/search", params={"q": key, "type": "lessons"}))["hits"] == []

    published = ok(await ann.post(f"/v1/lessons/{made['id']}:publish", json={}))
    assert published["published_at"]
    hits = ok(await bob.get("/v1/search", params={"q": key, "type": "lessons"}))["hits"]
    assert [hit["lesson"]["id"] for hit in hits] == [made["id"]]
    catalog = ok(
        await bob.get("/v1/lessons:catalog", params={"content_type": "quiz", "difficulty": 4})
    )
    assert made["id"] in [item["id"] for item in catalog["lessons"]]
    other_level = ok(await bob.get("/v1/lessons:catalog", params={"difficulty": 5}))
    assert made["id"] not in [item["id"] for item in other_level["lessons"]]
    refused(
        await bob.get("/v1/lessons:catalog", params={"difficulty": 11}), 400, "INVALID_DIFFICULTY"
    )

    # PATCH: only the body's keys change (the gateway's FieldMask); owner only.
    edited = ok(await ann.patch(f"/v1/lessons/{made['id']}", json={"body": f"new {key} text"}))
    assert (edited["topic"], edited["body"]) == (f"{key} basics", f"new {key} text")
    refused(await bob.patch(f"/v1/lessons/{made['id']}", json={"topic": "mine"}), 403, "NOT_OWNER")
    refused(await bob.delete(f"/v1/lessons/{made['id']}"), 403, "NOT_OWNER")

    copy = ok(await bob.post(f"/v1/lessons/{made['id']}:duplicate", json={}))
    assert copy["status"] == "ready" and copy["body"] == f"new {key} text"
    mine = ok(await bob.get("/v1/lessons", params={"content_type": "quiz"}))["lessons"]
    assert [item["id"] for item in mine] == [copy["id"]]

    assert ok(await ann.delete(f"/v1/lessons/{made['id']}")) == {}
    refused(await ann.get(f"/v1/lessons/{made['id']}"), 404, "LESSON_NOT_FOUND")
    assert ok(await bob.get("/v1/search", params={"q": key, "type": "lessons"}))["hits"] == []
    # The copy is its own lesson: still there.
    assert ok(await bob.get(f"/v1/lessons/{copy['id']}"))["owner_id"] == copy["owner_id"]
