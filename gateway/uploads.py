"""`PUT /v1/uploads/{upload_id}/content`: the bytes of a user's upload, into the
asset store (kit.assets.uploads tells the whole flow).

No bearer token: content signed the URL (HMAC with `KLIK_UPLOAD_SECRET`), which
names the upload, its type, its size and its expiry. The body streams from the
socket into the store chunk by chunk, never held whole; it is refused, and nothing
is stored, when it grows past the declared size or `KLIK_UPLOAD_MAX_BYTES`, ends
short, or its first bytes are not the declared type's magic number. A URL takes one
body: once a file is stored under the upload's key, the store refuses another."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from gateway.errors import GatewayError
from kit.assets import AssetExists, AssetStore
from kit.assets.uploads import (
    SNIFF_BYTES,
    ExpiredUploadUrl,
    InvalidUploadUrl,
    UploadGrant,
    UploadSettings,
    sniff,
    upload_key,
    verified_grant,
)


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        "INVALID_ARGUMENT",
        f"the upload is larger than {limit} bytes",
        code="UPLOAD_TOO_LARGE",
        details={"limit": limit},
        http_status=413,
    )


def size_mismatch(size: int) -> GatewayError:
    return GatewayError(
        "INVALID_ARGUMENT",
        f"the upload must be exactly the {size} bytes asked for",
        code="UPLOAD_SIZE_MISMATCH",
        details={"size": size},
    )


def type_mismatch(content_type: str) -> GatewayError:
    return GatewayError(
        "INVALID_ARGUMENT",
        f"the file is not {content_type}",
        code="UPLOAD_TYPE_MISMATCH",
        details={"content_type": content_type},
    )


def url_used() -> GatewayError:
    return GatewayError(
        "ALREADY_EXISTS", "this upload URL has taken its file already", code="UPLOAD_URL_USED"
    )


async def checked_body(
    chunks: AsyncIterator[bytes], grant: UploadGrant, limit: int
) -> AsyncIterator[bytes]:
    """`chunks` as they come, refused (GatewayError) once they pass `limit`, end short
    of the grant's size, or start with another type's magic bytes."""
    received = 0
    head = b""
    async for chunk in chunks:
        if not chunk:
            continue
        received += len(chunk)
        if received > limit:
            raise too_large(limit)
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) == SNIFF_BYTES and sniff(head) != grant.content_type:
                raise type_mismatch(grant.content_type)
        yield chunk
    if len(head) < SNIFF_BYTES and sniff(head) != grant.content_type:
        raise type_mismatch(grant.content_type)
    if received != grant.size:
        raise size_mismatch(grant.size)


async def receive_upload(request: Request) -> Response:
    settings: UploadSettings = request.app.state.settings.uploads
    store: AssetStore = request.app.state.assets
    try:
        grant = _grant(settings, request, time.time())
        key = upload_key(grant.upload_id, grant.content_type)
        limit = min(grant.size, settings.max_bytes)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        if await store.stat(key) is not None:  # the early answer; put_stream decides
            raise url_used()
        body = checked_body(request.stream(), grant, limit)
        try:
            info = await store.put_stream(
                key, body, grant.content_type, size=grant.size, exclusive=True
            )
        except AssetExists:
            raise url_used() from None
        except ClientDisconnect:
            raise size_mismatch(grant.size) from None
    except GatewayError as error:
        return error.response()
    return JSONResponse(
        {"upload_id": grant.upload_id, "size": str(info.size), "content_type": info.mime_type}
    )


def _grant(settings: UploadSettings, request: Request, now: float) -> UploadGrant:
    try:
        return verified_grant(
            settings.secret, request.path_params["upload_id"], request.query_params, now=now
        )
    except InvalidUploadUrl:
        raise GatewayError(
            "PERMISSION_DENIED", "not a valid upload URL", code="UPLOAD_URL_INVALID"
        ) from None
    except ExpiredUploadUrl:
        raise GatewayError(
            "PERMISSION_DENIED",
            "this upload URL has expired: ask for a new upload",
            code="UPLOAD_URL_EXPIRED",
        ) from None
