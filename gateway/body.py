"""Reading a request body: JSON only, and never more than the configured limit —
counted while the body streams in, so a missing or lying Content-Length does not
get a large body buffered."""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import GatewayError


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        "INVALID_ARGUMENT",
        f"the request body is larger than {limit} bytes",
        code="BODY_TOO_LARGE",
        details={"limit": limit},
        http_status=413,
    )


async def read_json_body(request: Request, limit: int) -> bytes:
    """The body, at most `limit` bytes (413 beyond), refused with 415 when it is not
    empty and does not say it is JSON (a body without Content-Type included)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    content_type = request.headers.get("content-type")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    if body.strip() and (content_type is None or not is_json(content_type)):
        media = content_type.split(";")[0][:100] if content_type is not None else None
        given = "no Content-Type" if media is None else repr(media)
        raise GatewayError(
            "INVALID_ARGUMENT",
            f"the request body must be application/json, not {given}",
            code="UNSUPPORTED_MEDIA_TYPE",
            http_status=415,
        )
    return bytes(body)
