"""The asset-store contract, run against both stores: the local directory and the S3
store talking to a real S3 HTTP API (moto's server, on a free port, with IAM
authentication switched on, so every request's SigV4 signature is checked).

Each test uses its own job id as the key prefix; the bucket is shared by the module.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from kit.assets import AssetExists, AssetSettings, AssetStore, InvalidAssetKey, asset_key
from kit.assets.local import LocalAssetStore
from kit.assets.s3 import CHUNK, S3AssetStore, S3Error
from tests.helpers import free_port

BUCKET = "klik-assets"
REGION = "us-east-1"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str

    def settings(self, **changes: str) -> AssetSettings:
        env = {
            "KLIK_ASSET_STORE": "s3",
            "KLIK_S3_ENDPOINT": self.endpoint,
            "KLIK_S3_BUCKET": BUCKET,
            "KLIK_S3_REGION": REGION,
            "KLIK_S3_ACCESS_KEY_ID": self.access_key_id,
            "KLIK_S3_SECRET_ACCESS_KEY": self.secret_access_key,
            **changes,
        }
        return AssetSettings.from_env(env)

    def boto(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """moto on a free port. Its first 3 requests (IAM: user, key, policy) run
    unauthenticated; every later one must carry a valid signature of that key."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"3").json()
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="klik")
        key = iam.create_access_key(UserName="klik")["AccessKey"]
        iam.put_user_policy(UserName="klik", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
        s3 = S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        s3.boto().create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        yield s3
    finally:
        # The switch is process-wide in moto: leave authentication off again.
        initial = str(previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]).encode()
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=initial)
        server.stop()


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server
) -> AsyncIterator[AssetStore]:
    opened: AssetStore
    if request.param == "local":
        opened = LocalAssetStore(tmp_path / "assets")
    else:
        opened = S3AssetStore(s3_server.settings())
    yield opened
    await opened.close()


def new_key(index: int = 0, mime_type: str = "image/png") -> str:
    return asset_key(str(uuid.uuid4()), index, mime_type)


async def read_all(store: AssetStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


# ---- the contract, for both stores ---------------------------------------------------


async def test_put_then_stat_and_read_back(store: AssetStore) -> None:
    key = new_key(0, "image/png")
    data = os.urandom(1000)
    put = await store.put(key, data, "image/png")
    assert (put.key, put.size, put.mime_type) == (key, 1000, "image/png")
    info = await store.stat(key)
    assert info is not None
    assert (info.key, info.size, info.mime_type) == (key, 1000, "image/png")
    assert info.etag and info.etag == put.etag, "put and stat name the same version"
    assert await read_all(store, key) == data


async def pieces(data: bytes, sent: list[int], fail_at: int | None = None) -> AsyncIterator[bytes]:
    """`data` in 64 KiB pieces, recording each as the store takes it; raises once
    `fail_at` bytes were taken."""
    for offset in range(0, len(data), 64 * 1024):
        if fail_at is not None and offset >= fail_at:
            raise RuntimeError("refused mid-way")
        piece = data[offset : offset + 64 * 1024]
        sent.append(len(piece))
        yield piece


async def test_put_stream_stores_a_body_it_takes_piece_by_piece(store: AssetStore) -> None:
    key = new_key(0, "image/png")
    data = os.urandom(3 * CHUNK + 5)
    sent: list[int] = []
    put = await store.put_stream(key, pieces(data, sent), "image/png", size=len(data))
    assert (put.key, put.size) == (key, len(data))
    assert len(sent) > 10 and max(sent) <= 64 * 1024, "taken in pieces, not whole"
    assert await read_all(store, key) == data
    info = await store.stat(key)
    assert info is not None and info.size == len(data)


@pytest.mark.parametrize("announced", [100, 3 * 64 * 1024])
async def test_put_stream_of_the_wrong_size_stores_nothing(
    store: AssetStore, announced: int
) -> None:
    key = new_key(0, "image/png")
    with pytest.raises(ValueError, match="announced"):
        await store.put_stream(key, pieces(os.urandom(2 * 64 * 1024), []), "x", size=announced)
    assert await store.stat(key) is None
    if isinstance(store, LocalAssetStore):
        assert [p for p in store.root.rglob("*") if p.is_file()] == []


async def test_put_stream_that_fails_mid_way_stores_nothing(store: AssetStore) -> None:
    key = new_key(0, "image/png")
    data = os.urandom(4 * 64 * 1024)
    with pytest.raises(RuntimeError, match="mid-way"):
        await store.put_stream(key, pieces(data, [], fail_at=2 * 64 * 1024), "x", size=len(data))
    assert await store.stat(key) is None
    if isinstance(store, LocalAssetStore):
        assert [p for p in store.root.rglob("*") if p.is_file()] == []


async def test_an_exclusive_put_stream_never_replaces_a_file(store: AssetStore) -> None:
    key = new_key(0, "image/png")
    await store.put(key, b"first", "image/png")
    with pytest.raises(AssetExists):
        await store.put_stream(key, pieces(b"second", []), "image/png", size=6, exclusive=True)
    assert await read_all(store, key) == b"first"
    if isinstance(store, LocalAssetStore):
        assert [p.name for p in store.root.rglob("*") if p.is_file()] == [key.split("/")[1]]


async def test_a_missing_file_has_no_stat_and_cannot_be_read(store: AssetStore) -> None:
    key = new_key()
    assert await store.stat(key) is None
    with pytest.raises(FileNotFoundError):
        await read_all(store, key)


async def test_a_key_prefix_is_not_a_file(store: AssetStore) -> None:
    key = new_key()
    await store.put(key, b"x", "image/png")
    assert await store.stat(key.split("/")[0]) is None


async def test_a_multi_chunk_file_streams_in_bounded_chunks(store: AssetStore) -> None:
    key = new_key(0, "video/mp4")
    data = os.urandom(4 * CHUNK + 17)
    await store.put(key, data, "video/mp4")
    chunks = [chunk async for chunk in store.read(key)]
    assert len(chunks) >= 5
    assert max(len(chunk) for chunk in chunks) <= CHUNK
    assert b"".join(chunks) == data


async def test_a_streamed_put_stores_its_chunks_as_one_file(store: AssetStore) -> None:
    key = new_key(0, "video/mp4")
    parts = [os.urandom(CHUNK) for _ in range(3)] + [os.urandom(17)]

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    put = await store.put_stream(key, chunks(), "video/mp4")
    assert (put.key, put.size, put.mime_type) == (key, 3 * CHUNK + 17, "video/mp4")
    info = await store.stat(key)
    assert info is not None and info.size == put.size and info.etag == put.etag
    assert await read_all(store, key) == b"".join(parts)


async def test_a_streamed_put_whose_chunks_fail_stores_nothing(
    store: AssetStore, tmp_path: Path
) -> None:
    key = new_key(0, "video/mp4")
    await store.put(key, b"the old file", "video/mp4")

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(CHUNK)
        raise ConnectionError("the download broke off")

    with pytest.raises(ConnectionError):
        await store.put_stream(key, broken(), "video/mp4")
    assert await read_all(store, key) == b"the old file", "the old file, whole"
    fresh = new_key(1, "video/mp4")
    with pytest.raises(ConnectionError):
        await store.put_stream(fresh, broken(), "video/mp4")
    assert await store.stat(fresh) is None
    leftovers = [p for p in (tmp_path / "assets").rglob(".put-*")]
    assert leftovers == [], "no temporary file left behind"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 1),
        (10, 20),
        (CHUNK - 3, CHUNK + 5),  # across a chunk boundary
        (5, None),  # to the end
        (3 * CHUNK, 10 * CHUNK),  # end past the end of the file
        (0, 3 * CHUNK + 100),  # exactly the whole file
    ],
)
async def test_ranged_reads_return_exactly_those_bytes(
    store: AssetStore, start: int, end: int | None
) -> None:
    key = new_key(0, "video/mp4")
    data = os.urandom(3 * CHUNK + 100)
    await store.put(key, data, "video/mp4")
    assert await read_all(store, key, start, end) == data[start:end]


@pytest.mark.parametrize(("start", "end"), [(100, 100), (50, 10), (100, None), (500, 600)])
async def test_empty_ranges_read_nothing(store: AssetStore, start: int, end: int | None) -> None:
    key = new_key()
    await store.put(key, b"x" * 100, "image/png")
    assert await read_all(store, key, start, end) == b""


@pytest.mark.parametrize(("start", "end"), [(-1, None), (0, -5)])
async def test_negative_offsets_are_refused(store: AssetStore, start: int, end: int | None) -> None:
    key = new_key()
    await store.put(key, b"x" * 100, "image/png")
    with pytest.raises(ValueError, match="bad range"):
        await read_all(store, key, start, end)


async def test_overwrite_replaces_content_and_etag(store: AssetStore) -> None:
    key = new_key()
    first = await store.put(key, b"first version", "image/png")
    second = await store.put(key, b"second, longer version", "image/png")
    assert second.etag != first.etag
    info = await store.stat(key)
    assert info is not None and (info.size, info.etag) == (22, second.etag)
    assert await read_all(store, key) == b"second, longer version"


async def test_a_read_under_way_finishes_on_the_version_it_started(store: AssetStore) -> None:
    key = new_key(0, "video/mp4")
    old, new = b"o" * (3 * CHUNK), b"n" * (3 * CHUNK)
    await store.put(key, old, "video/mp4")
    reader = store.read(key)
    first = await anext(reader)
    await store.put(key, new, "video/mp4")
    rest = [chunk async for chunk in reader]
    assert first + b"".join(rest) == old, "a reader sees the whole old file, never a mix"
    assert await read_all(store, key) == new


async def test_delete_removes_and_is_idempotent(store: AssetStore) -> None:
    key, other = new_key(0), new_key(1)
    await store.put(key, b"gone soon", "image/png")
    await store.put(other, b"stays", "image/png")
    await store.delete(key)
    assert await store.stat(key) is None
    await store.delete(key)  # already gone: no error
    assert await read_all(store, other) == b"stays"


@pytest.mark.parametrize(
    "key",
    ["../escape.png", "job/../../escape.png", "/etc/passwd", "job//0.png", ".hidden", "a/./b", ""],
)
async def test_keys_that_could_escape_are_rejected_by_every_operation(
    store: AssetStore, key: str
) -> None:
    with pytest.raises(InvalidAssetKey):
        await store.put(key, b"x", "image/png")
    with pytest.raises(InvalidAssetKey):
        await store.stat(key)
    with pytest.raises(InvalidAssetKey):
        await read_all(store, key)
    with pytest.raises(InvalidAssetKey):
        await store.delete(key)


# ---- S3 only -------------------------------------------------------------------------


async def test_s3_requests_are_signed_and_a_wrong_secret_is_refused(s3_server: S3Server) -> None:
    wrong = S3AssetStore(s3_server.settings(KLIK_S3_SECRET_ACCESS_KEY="not-the-secret"))
    try:
        with pytest.raises(S3Error) as refused:
            await wrong.put(new_key(), b"x", "image/png")
        assert refused.value.status == 403
        assert refused.value.code == "SignatureDoesNotMatch"
    finally:
        await wrong.close()


async def test_s3_objects_are_plain_s3_objects_to_other_clients(s3_server: S3Server) -> None:
    store = S3AssetStore(s3_server.settings())
    boto = s3_server.boto()
    try:
        ours, theirs = new_key(0, "image/webp"), new_key(1, "video/webm")
        await store.put(ours, b"from klik", "image/webp")
        got = boto.get_object(Bucket=BUCKET, Key=ours)  # type: ignore[attr-defined]
        assert (got["Body"].read(), got["ContentType"]) == (b"from klik", "image/webp")
        boto.put_object(  # type: ignore[attr-defined]
            Bucket=BUCKET, Key=theirs, Body=b"from boto", ContentType="video/webm"
        )
        info = await store.stat(theirs)
        assert info is not None and (info.size, info.mime_type) == (9, "video/webm")
        assert await read_all(store, theirs, 5) == b"boto"
    finally:
        await store.close()


async def test_s3_without_static_keys_uses_the_default_credential_chain(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    # No profile of the machine running the tests may take part.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings = s3_server.settings(KLIK_S3_ACCESS_KEY_ID="", KLIK_S3_SECRET_ACCESS_KEY="")
    assert settings.s3_access_key_id == ""
    store = S3AssetStore(settings)
    try:
        key = new_key()
        await store.put(key, b"chain", "image/png")
        assert await read_all(store, key) == b"chain"
    finally:
        await store.close()


async def test_s3_missing_bucket_is_an_error_not_a_missing_file(s3_server: S3Server) -> None:
    settings = replace(s3_server.settings(), s3_bucket="no-such-bucket")
    store = S3AssetStore(settings)
    try:
        with pytest.raises(S3Error) as missing:
            await store.put(new_key(), b"x", "image/png")
        assert (missing.value.status, missing.value.code) == (404, "NoSuchBucket")
    finally:
        await store.close()
