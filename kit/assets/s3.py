"""The S3-compatible asset store: AWS S3, MinIO, Ceph RGW, Cloudflare R2, moto.

Plain HTTP over one long-lived `httpx.AsyncClient`, each request signed with
botocore's SigV4 (botocore is used only to sign and to find credentials, never to
send). URLs are path-style, `{endpoint}/{bucket}/{key}`, which every S3-compatible
server accepts; virtual-hosted buckets would need wildcard DNS and TLS names.

Idempotent requests only (PUT of a whole object, HEAD, ranged GET, DELETE), so every
one is retried, re-signed, with capped exponential backoff and full jitter, on a
5xx or a transport error (refused connection, timeout, dropped stream before the
first byte). A read that fails after bytes were yielded is not resumed: the caller
has sent them on already.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, BinaryIO

import httpx
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import Session

from kit.assets.keys import check_key, guess_mime_type
from kit.assets.settings import AssetSettings
from kit.assets.store import AssetExists, AssetInfo, AssetStoreError, exactly
from kit.backoff import Backoff

CHUNK = 256 * 1024
# Hashing a large body for the signature would stall the event loop: sign in a thread.
_SIGN_IN_THREAD_BYTES = 64 * 1024
_RETRY_CAP_SECONDS = 5.0
_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


class S3Error(AssetStoreError):
    """S3 answered with an error status (after retries, for a 5xx)."""

    def __init__(self, method: str, key: str, status: int, code: str) -> None:
        super().__init__(f"S3 {method} {key or '/'}: {status} {code}".rstrip())
        self.status = status
        self.code = code


class S3AssetStore:
    def __init__(
        self,
        settings: AssetSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_base_seconds: float = 0.2,
    ) -> None:
        self._bucket_url = f"{settings.s3_endpoint}/{settings.s3_bucket}"
        self._region = settings.s3_region
        self._max_attempts = settings.s3_max_attempts
        self._wait = Backoff(retry_base_seconds, _RETRY_CAP_SECONDS, "full")
        self._static: ReadOnlyCredentials | None = None
        if settings.s3_access_key_id:
            self._static = ReadOnlyCredentials(
                settings.s3_access_key_id, settings.s3_secret_access_key, None
            )
        self._chain: Credentials | None = None
        self._chain_lock = asyncio.Lock()
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                settings.s3_timeout_seconds, connect=min(10.0, settings.s3_timeout_seconds)
            ),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            # Bytes are stored and served as they are: never let a proxy or server
            # compress them on the way (the Range offsets would stop matching).
            headers={"accept-encoding": "identity"},
        )

    def url(self, key: str) -> str:
        return f"{self._bucket_url}/{check_key(key)}"

    async def put(self, key: str, data: bytes, mime_type: str) -> AssetInfo:
        headers = {"content-type": mime_type, "content-length": str(len(data))}
        response = await self._send("PUT", key, headers, data)
        return await self._stored(key, response, len(data), mime_type)

    async def _stored(
        self, key: str, response: httpx.Response, size: int, mime_type: str
    ) -> AssetInfo:
        etag = _etag(response.headers)
        if not etag:  # some S3-compatible servers omit it on PUT
            info = await self.stat(key)
            etag = info.etag if info else ""
        return AssetInfo(key=key, size=size, mime_type=mime_type, etag=etag)

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        mime_type: str,
        *,
        size: int | None = None,
        exclusive: bool = False,
    ) -> AssetInfo:
        """One PUT whose body streams from `chunks` (`UNSIGNED-PAYLOAD`: the body is not
        hashed into the signature, so it need not be held). S3 stores an object only
        when all Content-Length bytes arrive, so a body cut short by a refused chunk
        leaves nothing. `exclusive` sends `If-None-Match: *` (S3 conditional writes).
        Not retried: the body cannot be sent again. Of an unknown `size` (a provider's
        download), the chunks are spooled to a temporary file (disk, not memory)
        first (signed over its content, and retried like `put`): a PUT needs its
        length, and nothing is sent when `chunks` fails."""
        if size is None:
            with tempfile.TemporaryFile() as spool:
                async for chunk in chunks:
                    await asyncio.to_thread(spool.write, chunk)
                spooled = await asyncio.to_thread(spool.tell)
                headers = {"content-type": mime_type, "content-length": str(spooled)}
                if exclusive:
                    headers["if-none-match"] = "*"
                response = await self._send("PUT", key, headers, spool)
            return await self._stored(key, response, spooled, mime_type)
        url = self.url(key)
        headers = {"content-type": mime_type, "content-length": str(size)}
        if exclusive:
            headers["if-none-match"] = "*"
        signed = _sign(await self._credentials(), self._region, "PUT", url, headers, None)
        request = self._client.build_request(
            "PUT", url, headers=signed, content=exactly(chunks, size)
        )
        try:
            response = await self._client.send(request)
        except httpx.TransportError as exc:
            raise AssetStoreError(f"S3 PUT {key}: {exc!r}") from exc
        if exclusive and response.status_code in (409, 412):
            raise AssetExists(f"an asset is stored under {key!r} already")
        if response.status_code >= 300:
            raise S3Error("PUT", key, response.status_code, _error_code(response.content))
        return await self._stored(key, response, size, mime_type)

    async def stat(self, key: str) -> AssetInfo | None:
        response = await self._send("HEAD", key, {}, b"", missing_ok=True)
        if response.status_code == 404:
            return None
        return AssetInfo(
            key=key,
            size=int(response.headers.get("content-length", "0")),
            mime_type=response.headers.get("content-type") or guess_mime_type(key),
            etag=_etag(response.headers),
        )

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Raises FileNotFoundError when there is no such file (like the local store)."""
        if start < 0 or (end is not None and end < 0):
            raise ValueError(f"bad range [{start}, {end})")
        if end is not None and end <= start:
            return
        headers = {}
        ranged = start > 0 or end is not None
        if ranged:
            headers["range"] = f"bytes={start}-{'' if end is None else end - 1}"
        response = await self._send("GET", key, headers, b"", missing_ok=True, stream=True)
        try:
            if response.status_code == 404:
                raise FileNotFoundError(f"no asset {key!r}")
            if response.status_code == 416:  # start at or past the end: nothing to read
                return
            if ranged and response.status_code != 206:
                # A server that ignored Range would hand the caller the wrong bytes.
                raise S3Error("GET", key, response.status_code, "RangeIgnored")
            async for chunk in response.aiter_raw(CHUNK):
                yield chunk
        finally:
            await response.aclose()

    async def delete(self, key: str) -> None:
        await self._send("DELETE", key, {}, b"", missing_ok=True)

    async def close(self) -> None:
        await self._client.aclose()

    # ---- one signed request, retried ----------------------------------------------

    async def _send(
        self,
        method: str,
        key: str,
        headers: Mapping[str, str],
        body: bytes | BinaryIO,
        *,
        missing_ok: bool = False,
        stream: bool = False,
    ) -> httpx.Response:
        """`body`: bytes, or a spooled file (read from its start, on every attempt)."""
        url = self.url(key)
        attempt = 0
        while True:
            attempt += 1
            signed = await self._signed_headers(method, url, headers, body)
            content = _file_chunks(body) if not isinstance(body, bytes) else body or None
            request = self._client.build_request(method, url, headers=signed, content=content)
            try:
                response = await self._client.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt >= self._max_attempts:
                    raise AssetStoreError(f"S3 {method} {key}: {exc!r}") from exc
                await self._backoff(attempt)
                continue
            status = response.status_code
            if status < 300 or status == 416 or (status == 404 and missing_ok):
                return response
            # A streamed error body is small: read it for the S3 error code.
            payload = await response.aread()
            await response.aclose()
            if _retryable(status) and attempt < self._max_attempts:
                await self._backoff(attempt)
                continue
            raise S3Error(method, key, status, _error_code(payload))

    async def _backoff(self, attempt: int) -> None:
        await asyncio.sleep(self._wait.delay(attempt))

    async def _signed_headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | BinaryIO
    ) -> dict[str, str]:
        credentials = await self._credentials()
        if not isinstance(body, bytes):
            await asyncio.to_thread(body.seek, 0)
            return await asyncio.to_thread(
                _sign, credentials, self._region, method, url, headers, body
            )
        if len(body) >= _SIGN_IN_THREAD_BYTES:
            return await asyncio.to_thread(
                _sign, credentials, self._region, method, url, headers, body
            )
        return _sign(credentials, self._region, method, url, headers, body)

    async def _credentials(self) -> ReadOnlyCredentials:
        if self._static is not None:
            return self._static
        chain = self._chain
        if chain is None:
            async with self._chain_lock:
                if self._chain is None:
                    self._chain = await asyncio.to_thread(_default_chain)
                chain = self._chain
        assert chain is not None
        # Temporary credentials (instance role, web identity) refresh themselves
        # here when near expiry, which may mean an HTTP call: keep it off the loop.
        frozen: ReadOnlyCredentials = await asyncio.to_thread(chain.get_frozen_credentials)
        return frozen


def _default_chain() -> Credentials:
    """botocore's chain: AWS_* variables, shared config/profile, web identity
    (EKS IRSA), container and instance roles."""
    credentials = Session().get_credentials()
    if credentials is None:
        raise AssetStoreError(
            "no S3 credentials: set KLIK_S3_ACCESS_KEY_ID and KLIK_S3_SECRET_ACCESS_KEY, "
            "or provide AWS credentials (AWS_* variables, profile, or a role)"
        )
    return credentials


class _UnsignedPayloadAuth(S3SigV4Auth):  # type: ignore[misc]
    """SigV4 with `x-amz-content-sha256: UNSIGNED-PAYLOAD`, for streamed bodies."""

    def _should_sha256_sign_payload(self, request: AWSRequest) -> bool:
        return False


def _sign(
    credentials: ReadOnlyCredentials,
    region: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | BinaryIO | None,
) -> dict[str, str]:
    """Signed headers over `body` (a file: hashed in chunks, from its start); `body`
    None: a streamed body, left out of the signature."""
    data = b"" if body is None else body
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=data)
    auth = S3SigV4Auth if body is not None else _UnsignedPayloadAuth
    auth(credentials, "s3", region).add_auth(request)
    items: Any = request.headers.items()
    return {str(name): str(value) for name, value in items}


def _etag(headers: httpx.Headers) -> str:
    etag: str = headers.get("etag", "")
    return etag.removeprefix("W/").strip('"')


def _retryable(status: int) -> bool:
    # 429 and 503 SlowDown are throttling; other 5xx are the server's trouble.
    return status == 429 or status >= 500


def _error_code(payload: bytes) -> str:
    match = _ERROR_CODE.search(payload)
    if match is None:
        return ""
    code: bytes = match.group(1)
    return code.decode(errors="replace")


async def _file_chunks(body: BinaryIO) -> AsyncIterator[bytes]:
    await asyncio.to_thread(body.seek, 0)
    while chunk := await asyncio.to_thread(body.read, CHUNK):
        yield chunk
