"""Profile avatars through the gateway, on every real service (`python -m stack`:
PostgreSQL when reachable, the real nats-server, real gRPC between auth and content
with their service identities): a user uploads a PNG, sets it as their avatar with
`PATCH /v1/auth/me`, and auth (which asked content's internal AvatarService for the
file URL) shows it on the public profile and publishes it in `user.profile_changed`,
so content shows it on the user's posts, comments and notifications within seconds.
Another user's asset and a non-image asset are refused and change nothing; a
generated image is accepted; "" removes the avatar everywhere. The internal RPC
refuses end users and every service but auth."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest

from kit.config import service_keys_dir
from kit.identity import load_identity
from klik.content.v1 import avatars_pb2, avatars_pb2_grpc
from tests.content.test_uploads_gateway import grant, ok, png, put, refused
from tests.gateway.stack import NO_RATE_LIMITS, RunningStack, running_stack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

SECRET = "test-upload-secret-" + uuid.uuid4().hex
FRESH = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("avatars"), KLIK_UPLOAD_SECRET=SECRET, **NO_RATE_LIMITS
    ) as running:
        yield running


class Person:
    def __init__(self, http: httpx.AsyncClient, user_id: str, token: str) -> None:
        self.http, self.id, self.token = http, user_id, token


@pytest.fixture
async def people(stack: RunningStack) -> AsyncIterator[list[Person]]:
    found: list[Person] = []
    for _ in range(2):
        token = await asyncio.to_thread(stack.user, f"av-{uuid.uuid4().hex[:8]}@example.com")
        http = httpx.AsyncClient(
            base_url=stack.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            limits=FRESH,
        )
        found.append(Person(http, ok(await http.get("/v1/auth/me"))["id"], token))
    yield found
    for person in found:
        await person.http.aclose()


async def uploaded_png(person: Person) -> dict[str, Any]:
    data = png(4096)
    upload = await grant(person.http, len(data))
    assert (await put(upload["upload_url"], data)).status_code in (200, 201, 204)
    asset: dict[str, Any] = ok(
        await person.http.post(f"/v1/uploads/{upload['upload_id']}:complete", json={})
    )
    assert asset["kind"] == "UPLOAD"
    return asset


async def generated(person: Person, kind: str, prompt: str) -> dict[str, Any]:
    """The asset a succeeded generation job of `kind` became (content consumes
    `generation.job.succeeded`)."""
    job = ok(
        await person.http.post(
            "/v1/generations",
            json={"kind": kind, "prompt": prompt, "idempotency_key": uuid.uuid4().hex},
        )
    )

    async def asset() -> dict[str, Any] | None:
        listed = ok(await person.http.get("/v1/assets", params={"kind": kind}))
        return next((a for a in listed["assets"] if a["job_id"] == job["id"]), None)

    found: dict[str, Any] | None = await wait_for(asset, 60, message=f"the {kind} job's asset")
    assert found is not None
    return found


async def set_avatar(person: Person, asset_id: str) -> httpx.Response:
    return await person.http.patch("/v1/auth/me", json={"avatar_asset_id": asset_id})


async def test_an_uploaded_png_is_the_avatar_on_the_profile_posts_comments_and_notifications(
    stack: RunningStack, people: list[Person]
) -> None:
    ann, bob = people
    handle = f"ann{uuid.uuid4().hex[:8]}"
    ok(await ann.http.patch("/v1/auth/me", json={"handle": handle}))
    asset = await uploaded_png(ann)
    assert asset["url"].startswith(f"{stack.url}/v1/files/")

    me = ok(await set_avatar(ann, asset["id"]))
    assert (me["avatar_asset_id"], me["avatar_url"]) == (asset["id"], asset["url"])
    assert ok(await ann.http.get("/v1/auth/me"))["avatar_url"] == asset["url"]
    public = ok(await bob.http.get(f"/v1/users/{handle}"))
    assert (public["handle"], public["avatar_url"]) == (handle, asset["url"])
    async with httpx.AsyncClient(limits=FRESH) as browser:  # an <img> tag: no token
        image = await browser.get(public["avatar_url"])
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    post = ok(await ann.http.post("/v1/posts", json={"title": "hello", "body": "words"}))
    ok(await ann.http.post(f"/v1/posts/{post['id']}:publish", json={}))

    async def post_avatar() -> str:
        seen = ok(await bob.http.get(f"/v1/posts/{post['id']}"))
        return str(seen["author"].get("avatar_url", ""))

    await wait_for(
        lambda: _is(post_avatar, asset["url"]), 15, message="the avatar reached ann's post"
    )

    # Bob's avatar shows on his comment and on the notification Ann gets for it.
    bobs = await uploaded_png(bob)
    ok(await set_avatar(bob, bobs["id"]))

    async def comment_avatar() -> str:
        listed = ok(await ann.http.get(f"/v1/posts/{post['id']}/comments"))
        return str(listed["comments"][0]["author"].get("avatar_url", ""))

    ok(await bob.http.post(f"/v1/posts/{post['id']}/comments", json={"body": "nice"}))
    await wait_for(
        lambda: _is(comment_avatar, bobs["url"]), 15, message="bob's avatar on his comment"
    )

    async def notification_avatar() -> str:
        listed = ok(await ann.http.get("/v1/notifications"))
        actors = [n.get("actor", {}) for n in listed["notifications"]]
        return next(
            (str(a.get("avatar_url", "")) for a in actors if a.get("user_id") == bob.id), ""
        )

    await wait_for(
        lambda: _is(notification_avatar, bobs["url"]),
        15,
        message="bob's avatar on ann's notification",
    )

    # An empty id (named by the body's key) removes the avatar, everywhere.
    cleared = ok(await set_avatar(ann, ""))
    assert (cleared["avatar_asset_id"], cleared.get("avatar_url", "")) == ("", "")
    assert ok(await bob.http.get(f"/v1/users/{handle}")).get("avatar_url", "") == ""
    await wait_for(lambda: _is(post_avatar, ""), 15, message="the cleared avatar on the post")


async def _is(read: Any, expected: str) -> bool:
    return bool(await read() == expected)


async def test_another_users_asset_and_non_images_are_refused_and_change_nothing(
    stack: RunningStack, people: list[Person]
) -> None:
    ann, bob = people
    mine = await uploaded_png(ann)
    ok(await set_avatar(ann, mine["id"]))
    bobs = await uploaded_png(bob)

    refused(await set_avatar(ann, bobs["id"]), 404, "ASSET_NOT_FOUND")
    refused(await set_avatar(ann, str(uuid.uuid4())), 404, "ASSET_NOT_FOUND")
    refused(await set_avatar(ann, "not an id!"), 400, "INVALID_AVATAR")
    text = await generated(ann, "TEXT", "a short poem")
    reply = await set_avatar(ann, text["id"])
    refused(reply, 400, "AVATAR_NOT_IMAGE")
    assert reply.json()["error"]["details"]["kind"] == "TEXT"

    me = ok(await ann.http.get("/v1/auth/me"))
    assert (me["avatar_asset_id"], me["avatar_url"]) == (mine["id"], mine["url"])

    # A picture Ann generated is hers too, and an image: a fine avatar.
    image = await generated(ann, "IMAGE", "a red square")
    me = ok(await set_avatar(ann, image["id"]))
    assert (me["avatar_asset_id"], me["avatar_url"]) == (image["id"], image["url"])
    public = ok(await bob.http.get(f"/v1/users/{ann.id}"))
    assert public["avatar_url"] == image["url"]


async def test_the_internal_rpc_refuses_end_users_and_other_services(
    stack: RunningStack, people: list[Person]
) -> None:
    ann, _ = people
    asset = await uploaded_png(ann)
    keys = service_keys_dir(stack.env)
    request = avatars_pb2.ResolveAvatarRequest(user_id=ann.id, asset_id=asset["id"])
    target = f"127.0.0.1:{stack.env['KLIK_CONTENT_PORT']}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = avatars_pb2_grpc.AvatarServiceStub(channel)

        async def call(token: str) -> avatars_pb2.ResolveAvatarResponse:
            reply: avatars_pb2.ResolveAvatarResponse = await stub.ResolveAvatar(
                request, metadata=(("authorization", f"Bearer {token}"),), timeout=10
            )
            return reply

        generation, auth = load_identity(keys, "generation"), load_identity(keys, "auth")
        assert generation is not None and auth is not None
        for token in (ann.token, generation.token("content")):
            with pytest.raises(grpc.aio.AioRpcError) as refusal:
                await call(token)
            assert refusal.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "SERVICE_IDENTITY_REQUIRED" in str(refusal.value.trailing_metadata())
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.ResolveAvatar(request, timeout=10)
        assert missing.value.code() is grpc.StatusCode.UNAUTHENTICATED

        # Auth's own identity is answered.
        reply = await call(auth.token("content"))
        assert (reply.url, reply.mime_type, reply.kind) == (asset["url"], "image/png", "UPLOAD")

    # The gateway has no route to it.
    assert (await ann.http.post("/v1/avatars:resolve", json={})).status_code == 404
