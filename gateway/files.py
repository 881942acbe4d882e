"""`GET|HEAD /v1/files/{key}`: generated media from the asset store (kit.assets).

No bearer token: the key holds a random job id, so the URL itself is the capability,
and `<img>` / `<video>` elements cannot send headers anyway. A key never changes its
content, so responses are cacheable forever. Single byte ranges are honoured (video
seeking); the body is streamed from the store, never held in memory."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.errors import GatewayError
from kit.assets import AssetInfo, AssetStore, InvalidAssetKey, check_key

CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


class Unsatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> ByteRange | None:
    """The one range `header` asks for; None to serve the whole file (no header, a
    header we do not understand, or several ranges: RFC 9110 lets a server ignore
    Range). `Unsatisfiable` when no byte of it exists."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last) or not _digits(first) or not _digits(last):
        return None
    if not first:  # the last N bytes
        if int(last) == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - int(last)), size)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid, so ignored
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(int(last) + 1, size) if last else size)


def _digits(text: str) -> bool:
    return text == "" or (text.isascii() and text.isdigit())


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: `W/` prefixes do not matter."""
    if header.strip() == "*":
        return True
    tags = (tag.strip().removeprefix("W/") for tag in header.split(","))
    return etag in tags


def not_found(key: str) -> GatewayError:
    return GatewayError("NOT_FOUND", "no such file", code="FILE_NOT_FOUND")


async def serve_file(request: Request) -> Response:
    store: AssetStore = request.app.state.assets
    key = request.path_params["key"]
    try:
        info = await store.stat(check_key(key))
        if info is None:
            raise not_found(key)
        return _response(request, store, info)
    except InvalidAssetKey:
        return not_found(key).response()
    except GatewayError as error:
        return error.response()


def _response(request: Request, store: AssetStore, info: AssetInfo) -> Response:
    etag = f'"{info.etag}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_FOREVER,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    wanted: ByteRange | None = None
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    # If-Range: a range of a file that changed since the client's copy is useless.
    if range_header is not None and (if_range is None or if_range.strip() == etag):
        try:
            wanted = parse_range(range_header, info.size)
        except Unsatisfiable:
            raise GatewayError(
                "OUT_OF_RANGE",
                f"the file has {info.size} bytes",
                code="RANGE_NOT_SATISFIABLE",
                http_status=416,
                headers={"Content-Range": f"bytes */{info.size}"},
            ) from None
    status = 200
    start, end = 0, info.size
    if wanted is not None:
        status, start, end = 206, wanted.start, wanted.end
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=info.mime_type)
    return StreamingResponse(
        store.read(info.key, start, end),
        status_code=status,
        headers=headers,
        media_type=info.mime_type,
    )
