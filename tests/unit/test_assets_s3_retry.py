"""The S3 store's request policy, against a scripted transport (httpx.MockTransport):
which failures it retries, that every attempt is signed afresh, and which it gives
up on. The S3 API itself is exercised in tests/integration/test_asset_store_s3.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from kit.assets import AssetSettings, AssetStoreError
from kit.assets.s3 import S3AssetStore, S3Error

Handler = Callable[[httpx.Request], httpx.Response]
KEY = "3f2b9c1e-0000-4000-8000-000000000001/0.png"
ERROR_XML = b"<?xml version='1.0'?><Error><Code>{code}</Code></Error>"


class Script:
    """Answers each request with the next scripted step (a response or an exception)
    and records what it was sent."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


class Body(httpx.AsyncByteStream):
    """A body that arrives as a stream, as it does off a socket (a Response built
    from `content=` counts as already read)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def body(status: int, data: bytes) -> httpx.Response:
    return httpx.Response(status, stream=Body(data))


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, content=ERROR_XML.replace(b"{code}", code.encode()))


@pytest.fixture
def settings() -> AssetSettings:
    return AssetSettings.from_env(
        {
            "KLIK_ASSET_STORE": "s3",
            "KLIK_S3_ENDPOINT": "http://s3.test:9000",
            "KLIK_S3_BUCKET": "media",
            "KLIK_S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "KLIK_S3_SECRET_ACCESS_KEY": "secret",
            "KLIK_S3_MAX_ATTEMPTS": "3",
        }
    )


@pytest.fixture
async def make_store(settings: AssetSettings) -> AsyncIterator[Callable[[Script], S3AssetStore]]:
    stores: list[S3AssetStore] = []

    def make(script: Script) -> S3AssetStore:
        transport = httpx.MockTransport(script)
        stores.append(S3AssetStore(settings, transport=transport, retry_base_seconds=0.001))
        return stores[-1]

    yield make
    for store in stores:
        await store.close()


async def test_5xx_and_throttling_are_retried_with_a_fresh_signature(
    make_store: Callable[[Script], S3AssetStore],
) -> None:
    script = Script(
        error(503, "SlowDown"),
        error(500, "InternalError"),
        httpx.Response(200, headers={"etag": '"abc"'}),
    )
    info = await make_store(script).put(KEY, b"png", "image/png")
    assert info.etag == "abc" and info.size == 3
    assert len(script.requests) == 3
    for request in script.requests:
        assert str(request.url) == f"http://s3.test:9000/media/{KEY}"
        assert request.headers["authorization"].startswith(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
        )
        assert "x-amz-date" in request.headers and "x-amz-content-sha256" in request.headers
        assert request.headers["content-type"] == "image/png"
        assert request.content == b"png"


async def test_connection_errors_are_retried(
    make_store: Callable[[Script], S3AssetStore],
) -> None:
    script = Script(
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, headers={"content-length": "7", "content-type": "image/png"}),
    )
    info = await make_store(script).stat(KEY)
    assert info is not None and (info.size, info.mime_type) == (7, "image/png")
    assert [r.method for r in script.requests] == ["HEAD"] * 3


async def test_out_of_attempts_is_an_asset_store_error(
    make_store: Callable[[Script], S3AssetStore],
) -> None:
    script = Script(*[httpx.ConnectError("refused")] * 3)
    with pytest.raises(AssetStoreError, match="ConnectError"):
        await make_store(script).stat(KEY)
    assert len(script.requests) == 3
    five_hundreds = Script(*[error(502, "BadGateway")] * 3)
    with pytest.raises(S3Error) as failed:
        await make_store(five_hundreds).delete(KEY)
    assert (failed.value.status, failed.value.code) == (502, "BadGateway")
    assert len(five_hundreds.requests) == 3


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (400, "InvalidRequest")])
async def test_client_errors_are_not_retried(
    make_store: Callable[[Script], S3AssetStore], status: int, code: str
) -> None:
    script = Script(error(status, code))
    with pytest.raises(S3Error) as failed:
        await make_store(script).put(KEY, b"x", "image/png")
    assert (failed.value.status, failed.value.code) == (status, code)
    assert len(script.requests) == 1


async def test_a_read_sends_a_signed_range_and_retries_before_the_first_byte(
    make_store: Callable[[Script], S3AssetStore],
) -> None:
    script = Script(error(503, "SlowDown"), body(206, b"lo wor"))
    store = make_store(script)
    assert b"".join([c async for c in store.read(KEY, 3, 9)]) == b"lo wor"
    assert [r.headers["range"] for r in script.requests] == ["bytes=3-8"] * 2
    signed = script.requests[-1].headers["authorization"]
    assert "range" in signed.split("SignedHeaders=")[1].split(",")[0].split(";")


async def test_a_server_that_ignores_range_is_refused_not_misread(
    make_store: Callable[[Script], S3AssetStore],
) -> None:
    script = Script(body(200, b"hello world"))
    with pytest.raises(S3Error, match="RangeIgnored"):
        _ = [c async for c in make_store(script).read(KEY, 3, 9)]


async def test_a_whole_read_sends_no_range(make_store: Callable[[Script], S3AssetStore]) -> None:
    script = Script(body(200, b"hello world"))
    assert b"".join([c async for c in make_store(script).read(KEY)]) == b"hello world"
    assert "range" not in script.requests[0].headers
    assert script.requests[0].headers["accept-encoding"] == "identity"
