"""Authors, comments and likes through the gateway, on every real service
(`python -m stack`: PostgreSQL when reachable, the real nats-server): accounts
registered with auth reach content as public profiles by auth's own
`user.registered`; a `user.profile_changed` on that NATS renames the author
everywhere within seconds; likes and comments move the post's counters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import nats
import pytest

from klik.events.v1.events_pb2 import UserProfileChanged
from tests.gateway.stack import NO_RATE_LIMITS, RunningStack, running_stack
from tests.gateway.test_events import EventReader
from tests.helpers import envelope, publish_envelope, wait_for

pytestmark = pytest.mark.slow

MODERATOR = "moderator-social@example.com"
# A fresh connection per request: the gateway closes idle keep-alive connections
# after a few seconds, and reusing one just as it closes is a ReadError.
FRESH = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("social"), KLIK_ADMIN_EMAILS=MODERATOR, **NO_RATE_LIMITS
    ) as running:
        yield running


class Person:
    def __init__(self, client: httpx.AsyncClient, user_id: str, name: str) -> None:
        self.http, self.id, self.name = client, user_id, name


@pytest.fixture
async def people(stack: RunningStack) -> AsyncIterator[list[Person]]:
    clients: list[httpx.AsyncClient] = []
    found: list[Person] = []
    for _ in range(3):
        name = f"social-{uuid.uuid4().hex[:8]}@example.com"
        token = await asyncio.to_thread(stack.user, name)
        client = httpx.AsyncClient(
            base_url=stack.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            limits=FRESH,
        )
        clients.append(client)
        user_id = (await client.get("/v1/wallet")).json()["user_id"]
        found.append(Person(client, user_id, name))
    yield found
    for client in clients:
        await client.aclose()


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


async def published_post(author: Person, title: str = "Hello") -> dict[str, Any]:
    post = ok(await author.http.post("/v1/posts", json={"title": title, "body": "words"}))
    published: dict[str, Any] = ok(
        await author.http.post(f"/v1/posts/{post['id']}:publish", json={})
    )
    return published


async def profile_changed(stack: RunningStack, user_id: str, handle: str, name: str) -> None:
    """Publish `user.profile_changed` on the stack's NATS, as auth would."""
    connection = await nats.connect(stack.env["KLIK_NATS_URL"])
    try:
        event = envelope(
            "user.profile_changed",
            UserProfileChanged(user_id=user_id, handle=handle, display_name=name),
            aggregate_id=user_id,
        )
        await publish_envelope(connection.jetstream(), event)
    finally:
        await connection.close()


async def test_authors_comments_and_likes_through_the_gateway(
    stack: RunningStack, people: list[Person]
) -> None:
    ann, bob, cat = people
    post = await published_post(ann)

    async def author_known() -> bool:
        seen = ok(await bob.http.get(f"/v1/posts/{post['id']}"))
        return bool(seen["author"].get("display_name") == ann.name)

    await wait_for(author_known, 15, message="auth's user.registered reached content")
    seen = ok(await bob.http.get(f"/v1/posts/{post['id']}"))
    assert seen["author"]["user_id"] == ann.id
    assert "email" not in seen["author"]

    liked = ok(await bob.http.put(f"/v1/posts/{post['id']}/like"))
    assert liked == {"like_count": "1", "liked_by_me": True}
    assert ok(await bob.http.put(f"/v1/posts/{post['id']}/like"))["like_count"] == "1"
    assert ok(await cat.http.put(f"/v1/posts/{post['id']}/like"))["like_count"] == "2"
    assert ok(await cat.http.delete(f"/v1/posts/{post['id']}/like")) == {
        "like_count": "1",
        "liked_by_me": False,
    }

    first = ok(await bob.http.post(f"/v1/posts/{post['id']}/comments", json={"body": "first"}))
    assert first["author"]["user_id"] == bob.id
    reply = ok(
        await ann.http.post(
            f"/v1/posts/{post['id']}/comments", json={"body": "thanks", "parent_id": first["id"]}
        )
    )
    assert reply["parent_id"] == first["id"]
    page = ok(await cat.http.get(f"/v1/posts/{post['id']}/comments", params={"page_size": 1}))
    assert [c["body"] for c in page["comments"]] == ["first"]
    rest = ok(
        await cat.http.get(
            f"/v1/posts/{post['id']}/comments", params={"page_token": page["next_page_token"]}
        )
    )
    assert [c["body"] for c in rest["comments"]] == ["thanks"]
    assert not rest.get("next_page_token")

    refused = await cat.http.patch(f"/v1/comments/{first['id']}", json={"body": "mine"})
    assert refused.status_code == 403 and "NOT_AUTHOR" in refused.text
    edited = ok(await bob.http.patch(f"/v1/comments/{first['id']}", json={"body": "first!"}))
    assert edited["body"] == "first!"
    comment_like = ok(await ann.http.put(f"/v1/comments/{first['id']}/like"))
    assert comment_like == {"like_count": "1", "liked_by_me": True}

    seen = ok(await bob.http.get(f"/v1/posts/{post['id']}"))
    assert (seen["like_count"], seen["comment_count"], seen["liked_by_me"]) == ("1", "2", True)
    assert ok(await ann.http.get(f"/v1/posts/{post['id']}"))["liked_by_me"] is False
    gone = await bob.http.delete(f"/v1/comments/{reply['id']}")
    assert gone.status_code == 403
    assert ok(await ann.http.delete(f"/v1/comments/{reply['id']}")) == {}
    assert ok(await bob.http.get(f"/v1/posts/{post['id']}"))["comment_count"] == "1"

    # A profile change on the bus renames the author on posts and comments.
    await profile_changed(stack, bob.id, "bobby", "Bobby")

    async def renamed() -> bool:
        listed = ok(await ann.http.get(f"/v1/posts/{post['id']}/comments"))
        return bool(listed["comments"][0]["author"].get("display_name") == "Bobby")

    await wait_for(renamed, 10, message="the rename reached the comments")
    listed = ok(await ann.http.get(f"/v1/posts/{post['id']}/comments"))
    assert listed["comments"][0]["author"]["handle"] == "bobby"
    missing = await bob.http.put(f"/v1/posts/{uuid.uuid4()}/like")
    assert missing.status_code == 404 and "POST_NOT_FOUND" in missing.text


async def test_follows_and_the_following_feed_through_the_gateway(
    stack: RunningStack, people: list[Person]
) -> None:
    ann, bob, cat = people
    handle = f"ann{uuid.uuid4().hex[:6]}"
    await profile_changed(stack, ann.id, handle, "Ann")

    async def known() -> bool:
        # Her account may be known before the handle is (user.registered came
        # first): wait for the profile change itself. The follow is idempotent.
        reply = await cat.http.put(f"/v1/follows/{ann.id}")
        return reply.status_code == 200 and reply.json().get("handle") == handle

    await wait_for(known, 15, message="ann's new handle reached content")
    followed = ok(await cat.http.put(f"/v1/follows/{ann.id}"))
    assert (followed["user_id"], followed["handle"]) == (ann.id, handle)
    assert ok(await bob.http.put(f"/v1/follows/{ann.id}"))["user_id"] == ann.id
    self_follow = await cat.http.put(f"/v1/follows/{cat.id}")
    assert self_follow.status_code == 400 and "CANNOT_FOLLOW_SELF" in self_follow.text
    followers = ok(await ann.http.get(f"/v1/users/{ann.id}/followers"))
    assert [p["user_id"] for p in followers["profiles"]] == [bob.id, cat.id]
    following = ok(await cat.http.get(f"/v1/users/{cat.id}/following"))
    assert [p["user_id"] for p in following["profiles"]] == [ann.id]

    older = await published_post(ann, "older")
    newer = await published_post(ann, "newer")
    await published_post(bob, "not followed")
    page = ok(await cat.http.get("/v1/feed/following", params={"page_size": 1}))
    assert [p["id"] for p in page["posts"]] == [newer["id"]]
    await published_post(ann, "newest")  # arrives between the pages
    rest = ok(
        await cat.http.get(
            "/v1/feed/following", params={"page_size": 5, "page_token": page["next_page_token"]}
        )
    )
    assert [p["id"] for p in rest["posts"]] == [older["id"]]
    assert rest["posts"][0]["author"]["handle"] == handle

    public = ok(await bob.http.get(f"/v1/profiles/{handle}"))
    assert public["profile"]["user_id"] == ann.id
    assert [p["title"] for p in public["posts"]] == ["newest", "newer", "older"]
    missing = await bob.http.get("/v1/profiles/no-such-handle")
    assert missing.status_code == 404 and "USER_NOT_FOUND" in missing.text

    assert ok(await cat.http.delete(f"/v1/follows/{ann.id}")) == {}
    assert ok(await cat.http.get("/v1/feed/following")).get("posts", []) == []


async def test_notifications_reach_an_open_event_stream(
    stack: RunningStack, people: list[Person]
) -> None:
    ann, bob, cat = people
    post = await published_post(ann)
    async with ann.http.stream("GET", "/v1/events", timeout=httpx.Timeout(10, read=30)) as live:
        assert live.status_code == 200
        stream = EventReader(live)

        async def followed() -> bool:
            return (await bob.http.put(f"/v1/follows/{ann.id}")).status_code == 200

        await wait_for(followed, 15, message="ann's profile reached content")
        async with asyncio.timeout(30):
            event = await stream.next()
            while event.event != "content.notification.created":
                event = await stream.next()
        assert event.data["user_id"] == ann.id
        payload = event.data["payload"]
        assert payload["kind"] == "follow" and payload["subject_id"] == bob.id
        assert payload["text"] == f"{bob.name} started following you"

    for fan in (bob, cat):
        ok(await fan.http.put(f"/v1/posts/{post['id']}/like"))
    inbox = ok(await ann.http.get("/v1/notifications"))
    assert inbox["unread_count"] == "2"
    assert [(n["kind"], n["text"]) for n in inbox["notifications"]] == [
        ("like", "2 people liked your post"),
        ("follow", f"{bob.name} started following you"),
    ]
    assert ok(await ann.http.post("/v1/notifications:read", json={"all": True})) == {
        "unread_count": "0"
    }
    assert ok(await ann.http.get("/v1/notifications"))["unread_count"] == "0"
    assert ok(await ann.http.put(f"/v1/mutes/{cat.id}")) == {}


async def test_reports_and_moderation_through_the_gateway(
    stack: RunningStack, people: list[Person]
) -> None:
    ann, bob, _ = people
    token = await asyncio.to_thread(stack.user, MODERATOR)
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=10, limits=FRESH
    ) as moderator:
        post = await published_post(ann, "reported")
        made = ok(
            await bob.http.post(
                "/v1/reports",
                json={"target_kind": "post", "target_id": post["id"], "reason": "spam"},
            )
        )
        assert made["status"] == "open"
        refused = await bob.http.get("/v1/reports")
        assert refused.status_code == 403
        listed = ok(await moderator.get("/v1/reports"))
        assert [r["id"] for r in listed["reports"]] == [made["id"]]

        hidden = ok(await moderator.post(f"/v1/posts/{post['id']}:hide", json={"reason": "spam"}))
        assert hidden["status"] == "hidden"
        assert (await bob.http.get(f"/v1/posts/{post['id']}")).status_code == 404
        assert ok(await moderator.get("/v1/reports")).get("reports", []) == []
        told = ok(await ann.http.get("/v1/notifications"))["notifications"][0]
        assert (told["kind"], told["text"]) == ("moderation", "A moderator hid your post: spam")

        shown = ok(
            await moderator.post(f"/v1/posts/{post['id']}:unhide", json={"reason": "appeal"})
        )
        assert shown["status"] == "published"
        assert ok(await bob.http.get(f"/v1/posts/{post['id']}"))["id"] == post["id"]
        audit = ok(await moderator.get("/v1/moderation/actions"))["actions"]
        assert [(a["action"], a["reason"]) for a in audit[:2]] == [
            ("unhide", "appeal"),
            ("hide", "spam"),
        ]
