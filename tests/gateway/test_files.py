"""`GET|HEAD /v1/files/{key}` through a real gateway, from a real local asset store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.files import ByteRange, Unsatisfiable, parse_range
from kit.assets.local import LocalAssetStore
from tests.gateway.fakes import StartGateway, error_of

KEY = "3f2c9a1e-5b7d-4c1a-9e8f-0a1b2c3d4e5f/0.png"
DATA = bytes(range(256)) * 40  # 10 240 bytes


@pytest.fixture
async def files(start_gateway: StartGateway, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose asset store holds KEY (and which sends no token: none needed)."""
    store = LocalAssetStore(tmp_path / "assets")
    await store.put(KEY, DATA, "image/png")
    (tmp_path / "secret.txt").write_text("outside the store")
    gateway = await start_gateway(KLIK_ASSET_DIR=str(tmp_path / "assets"))
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client:
        yield client


async def test_a_file_is_served_whole_with_its_cache_headers(files: httpx.AsyncClient) -> None:
    reply = await files.get(f"/v1/files/{KEY}")
    assert reply.status_code == 200
    assert reply.content == DATA
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers["content-length"] == str(len(DATA))
    assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert reply.headers["accept-ranges"] == "bytes"
    assert reply.headers["etag"].startswith('"') and reply.headers["etag"].endswith('"')


async def test_head_gives_the_headers_without_the_body(files: httpx.AsyncClient) -> None:
    reply = await files.head(f"/v1/files/{KEY}")
    assert reply.status_code == 200
    assert reply.content == b""
    assert reply.headers["content-length"] == str(len(DATA))
    assert reply.headers["content-type"] == "image/png"


async def test_a_matching_etag_is_304(files: httpx.AsyncClient) -> None:
    etag = (await files.head(f"/v1/files/{KEY}")).headers["etag"]
    for header in (etag, f'"other", W/{etag}', "*"):
        reply = await files.get(f"/v1/files/{KEY}", headers={"If-None-Match": header})
        assert reply.status_code == 304
        assert reply.content == b""
        assert reply.headers["etag"] == etag
    stale = await files.get(f"/v1/files/{KEY}", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.content == DATA


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=10000-", 10000, 10240),
        ("bytes=-40", 10200, 10240),
        ("bytes=10200-99999", 10200, 10240),
    ],
)
async def test_a_single_range_is_206(
    files: httpx.AsyncClient, header: str, start: int, end: int
) -> None:
    reply = await files.get(f"/v1/files/{KEY}", headers={"Range": header})
    assert reply.status_code == 206
    assert reply.content == DATA[start:end]
    assert reply.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert reply.headers["content-length"] == str(end - start)


async def test_a_range_past_the_end_is_416(files: httpx.AsyncClient) -> None:
    reply = await files.get(f"/v1/files/{KEY}", headers={"Range": "bytes=10240-"})
    assert reply.status_code == 416
    assert reply.headers["content-range"] == f"bytes */{len(DATA)}"
    error_of(reply, "RANGE_NOT_SATISFIABLE", "OUT_OF_RANGE")


async def test_a_range_for_an_older_copy_gets_the_whole_file(files: httpx.AsyncClient) -> None:
    reply = await files.get(
        f"/v1/files/{KEY}", headers={"Range": "bytes=0-9", "If-Range": '"older"'}
    )
    assert reply.status_code == 200 and reply.content == DATA


@pytest.mark.parametrize(
    "path",
    [
        "/v1/files/3f2c9a1e-5b7d-4c1a-9e8f-0a1b2c3d4e5f/1.png",  # no such file
        "/v1/files/..%2Fsecret.txt",
        "/v1/files/%2E%2E/secret.txt",
        "/v1/files/x/..%2F..%2Fsecret.txt",
        "/v1/files/.hidden",
        "/v1/files/",
    ],
)
async def test_missing_files_and_escapes_are_404(files: httpx.AsyncClient, path: str) -> None:
    reply = await files.get(path)
    assert reply.status_code == 404
    assert "outside the store" not in reply.text
    assert reply.json()["error"]["status"] == "NOT_FOUND"


def test_range_headers_parse_as_rfc_9110_says() -> None:
    assert parse_range("bytes=5-9", 100) == ByteRange(5, 10)
    assert parse_range("bytes=-500", 100) == ByteRange(0, 100)
    for ignored in ("bytes=0-1,5-6", "items=0-1", "bytes=9-5", "bytes=a-b", "bytes=-", "bytes"):
        assert parse_range(ignored, 100) is None, ignored
    for unsatisfiable in ("bytes=100-", "bytes=-0"):
        with pytest.raises(Unsatisfiable):
            parse_range(unsatisfiable, 100)


async def test_the_api_document_describes_downloads_and_events(
    files: httpx.AsyncClient,
) -> None:
    spec = (await files.get("/openapi.json")).json()
    download = spec["paths"]["/v1/files/{key}"]
    assert set(download) == {"get", "head"}
    assert download["get"]["security"] == []  # the key is the capability
    assert "capability" in download["get"]["description"]
    assert {"200", "206", "304"} <= set(download["get"]["responses"])
    events = spec["paths"]["/v1/events"]["get"]
    assert "security" not in events  # the document's default: bearer
    assert "text/event-stream" in events["responses"]["200"]["content"]
    page = (await files.get("/docs")).text
    assert "<code>/v1/events</code>" in page and "<code>/v1/files/{key}</code>" in page
