"""Uploads through the gateway, on every real service (`python -m stack`: PostgreSQL
when reachable, the real content gRPC server, the local asset store): a granted
upload's signed URL takes the bytes with PUT, streamed into the store; `:complete`
makes them an asset of kind UPLOAD that a post can show and /v1/files serves back.
Every refused body (too large, wrong magic bytes, a replayed, expired or forged
URL) leaves no file in the store's directory."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kit.assets.uploads import UploadGrant, UploadSettings
from tests.gateway.stack import NO_RATE_LIMITS, RunningStack, running_stack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

MB = 1000 * 1000
SECRET = "test-upload-secret-" + uuid.uuid4().hex
FRESH = httpx.Limits(max_keepalive_connections=0)


def png(size: int) -> bytes:
    """A real PNG header and IHDR chunk, padded with noise to exactly `size` bytes."""
    ihdr = b"IHDR" + (1).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    head = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + ihdr
    head += zlib.crc32(ihdr).to_bytes(4, "big")
    return head + os.urandom(size - len(head))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("uploads"), KLIK_UPLOAD_SECRET=SECRET, **NO_RATE_LIMITS
    ) as running:
        yield running


def store_files(stack: RunningStack) -> list[str]:
    """Every file in the local asset store's uploads, temporary ones included."""
    root = Path(stack.env["KLIK_VAR_DIR"]) / "assets" / "uploads"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def client(stack: RunningStack) -> httpx.AsyncClient:
    token = await asyncio.to_thread(stack.user, f"up-{uuid.uuid4().hex[:8]}@example.com")
    return httpx.AsyncClient(
        base_url=stack.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        limits=FRESH,
    )


@pytest.fixture
async def alice(stack: RunningStack) -> AsyncIterator[httpx.AsyncClient]:
    async with await client(stack) as http:
        yield http


@pytest.fixture
async def bob(stack: RunningStack) -> AsyncIterator[httpx.AsyncClient]:
    async with await client(stack) as http:
        yield http


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def refused(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code, reply.text


async def grant(http: httpx.AsyncClient, size: int, content_type: str = "image/png") -> Any:
    return ok(await http.post("/v1/uploads", json={"content_type": content_type, "size": size}))


async def put(url: str, body: bytes | AsyncIterator[bytes]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60, limits=FRESH) as anonymous:
        return await anonymous.put(url, content=body)


async def test_a_9_mb_png_becomes_an_asset_a_post_shows_and_files_serve(
    stack: RunningStack, alice: httpx.AsyncClient
) -> None:
    data = png(9 * MB)
    upload = await grant(alice, len(data))
    assert upload["upload_url"].startswith(f"{stack.url}/v1/uploads/{upload['upload_id']}/")
    refused(
        await alice.post(f"/v1/uploads/{upload['upload_id']}:complete", json={}),
        400,
        "UPLOAD_NOT_RECEIVED",
    )
    before = set(store_files(stack))

    async def slowly() -> AsyncIterator[bytes]:
        """The body in 256 KiB pieces; half-way it waits until the store's temporary
        file holds bytes: the gateway writes while the client is still sending, so
        it never holds the whole body."""
        root = Path(stack.env["KLIK_VAR_DIR"]) / "assets" / "uploads"
        step = 256 * 1024
        for offset in range(0, len(data), step):
            if offset == 16 * step:
                await wait_for(
                    lambda: any(
                        p.name.startswith(".put-") and p.stat().st_size >= 8 * step
                        for p in root.glob(".put-*")
                    ),
                    message="the store never received the first chunks",
                )
            yield data[offset : offset + step]

    stored = ok(await put(upload["upload_url"], slowly()))
    assert stored["size"] == str(len(data))

    asset = ok(await alice.post(f"/v1/uploads/{upload['upload_id']}:complete", json={}))
    assert asset["kind"] == "UPLOAD" and asset["mime_type"] == "image/png"
    assert asset["job_id"] == ""
    again = ok(await alice.post(f"/v1/uploads/{upload['upload_id']}:complete", json={}))
    assert again["id"] == asset["id"], "completing twice is the same asset"
    assert set(store_files(stack)) - before == {f"{upload['upload_id']}.png"}

    post = ok(await alice.post("/v1/posts", json={"title": "mine", "asset_ids": [asset["id"]]}))
    assert post["asset_ids"] == [asset["id"]]
    listed = ok(await alice.get("/v1/assets", params={"kind": "UPLOAD"}))
    assert [a["id"] for a in listed["assets"]] == [asset["id"]]

    path = urlsplit(asset["url"]).path
    assert path.startswith("/v1/files/uploads/")
    async with httpx.AsyncClient(base_url=stack.url, timeout=60, limits=FRESH) as anonymous:
        served = await anonymous.get(path)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == data


async def test_someone_elses_upload_is_not_theirs_to_complete_or_attach(
    stack: RunningStack, alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    data = png(2048)
    upload = await grant(alice, len(data))
    ok(await put(upload["upload_url"], data))
    refused(
        await bob.post(f"/v1/uploads/{upload['upload_id']}:complete", json={}),
        404,
        "UPLOAD_NOT_FOUND",
    )
    asset = ok(await alice.post(f"/v1/uploads/{upload['upload_id']}:complete", json={}))
    refused(
        await bob.post("/v1/posts", json={"title": "not mine", "asset_ids": [asset["id"]]}),
        400,
        "UNKNOWN_ASSET",
    )


async def test_a_body_over_the_declared_size_or_the_hard_limit_is_413_and_stores_nothing(
    stack: RunningStack, alice: httpx.AsyncClient
) -> None:
    before = store_files(stack)
    refused(
        await alice.post("/v1/uploads", json={"content_type": "image/png", "size": 11 * MB}),
        413,
        "UPLOAD_TOO_LARGE",
    )
    upload = await grant(alice, 9 * MB)
    eleven = png(11 * MB)
    refused(await put(upload["upload_url"], eleven), 413, "UPLOAD_TOO_LARGE")

    async def unannounced() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        for offset in range(0, len(eleven), 1024 * 1024):
            yield eleven[offset : offset + 1024 * 1024]

    refused(await put(upload["upload_url"], unannounced()), 413, "UPLOAD_TOO_LARGE")
    # A URL signed for 11 MB (content never grants one) still meets the hard limit.
    forged = signed_url(stack, str(uuid.uuid4()), 11 * MB, expires=int(time.time()) + 600)
    refused(await put(forged, unannounced()), 413, "UPLOAD_TOO_LARGE")
    assert store_files(stack) == before
    refused(
        await alice.post(f"/v1/uploads/{upload['upload_id']}:complete", json={}),
        400,
        "UPLOAD_NOT_RECEIVED",
    )


async def test_html_named_png_and_a_short_body_are_refused_and_store_nothing(
    stack: RunningStack, alice: httpx.AsyncClient
) -> None:
    before = store_files(stack)
    html = b"<!doctype html><html><body><script>alert(1)</script></body></html>" * 40
    upload = await grant(alice, len(html))
    refused(await put(upload["upload_url"], html), 400, "UPLOAD_TYPE_MISMATCH")
    jpeg = await grant(alice, 4096, "image/jpeg")
    refused(await put(jpeg["upload_url"], png(4096)), 400, "UPLOAD_TYPE_MISMATCH")
    short = await grant(alice, 4096)
    refused(await put(short["upload_url"], png(4000)), 400, "UPLOAD_SIZE_MISMATCH")
    assert store_files(stack) == before


async def test_a_replayed_url_is_409_and_changes_nothing(
    stack: RunningStack, alice: httpx.AsyncClient
) -> None:
    first, second = png(4096), png(4096)
    upload = await grant(alice, len(first))
    ok(await put(upload["upload_url"], first))
    files = store_files(stack)
    refused(await put(upload["upload_url"], second), 409, "UPLOAD_URL_USED")
    assert store_files(stack) == files
    asset = ok(await alice.post(f"/v1/uploads/{upload['upload_id']}:complete", json={}))
    async with httpx.AsyncClient(base_url=stack.url, timeout=60, limits=FRESH) as anonymous:
        assert (await anonymous.get(urlsplit(asset["url"]).path)).content == first
    refused(await put(upload["upload_url"], second), 409, "UPLOAD_URL_USED")


async def test_an_expired_or_tampered_url_is_403_and_stores_nothing(
    stack: RunningStack, alice: httpx.AsyncClient
) -> None:
    before = store_files(stack)
    data = png(4096)
    upload = await grant(alice, len(data))
    expired = signed_url(stack, upload["upload_id"], len(data), expires=int(time.time()) - 1)
    refused(await put(expired, data), 403, "UPLOAD_URL_EXPIRED")
    query = parse_qs(urlsplit(upload["upload_url"]).query)
    longer = upload["upload_url"].replace(f"size={query['size'][0]}", "size=5000")
    refused(await put(longer, png(5000)), 403, "UPLOAD_URL_INVALID")
    refused(await put(upload["upload_url"] + "0", data), 403, "UPLOAD_URL_INVALID")
    assert store_files(stack) == before


def signed_url(stack: RunningStack, upload_id: str, size: int, *, expires: int) -> str:
    """An upload URL as content would sign it, for what content never grants (a past
    expiry, an oversized body): the same HMAC, with the stack's secret."""
    settings = UploadSettings.from_env(stack.env)
    return UploadGrant(upload_id, "image/png", size, expires).url(settings)


async def test_create_upload_with_an_idempotency_key_replays_the_first_upload(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    key = f"avatar-{uuid.uuid4()}"
    body = {"content_type": "image/png", "size": 4096, "idempotency_key": key}
    first = ok(await alice.post("/v1/uploads", json=body))
    again = ok(await alice.post("/v1/uploads", json=body))
    assert again == first
    refused(
        await alice.post("/v1/uploads", json={**body, "size": 4097}), 409, "IDEMPOTENCY_KEY_REUSED"
    )
    other = ok(await bob.post("/v1/uploads", json=body))
    assert other["upload_id"] != first["upload_id"], "keys are per user"
    fresh = ok(await alice.post("/v1/uploads", json={"content_type": "image/png", "size": 4096}))
    assert fresh["upload_id"] != first["upload_id"]
