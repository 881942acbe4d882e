"""The files the sandbox's results point at, and where they are:

    GET  /files/images/{seed}/{W}x{H}.png      a result image (a real PNG, png.py)
    GET  /files/videos/{seed}/{ms}.mp4         a result video (an MP4 placeholder, mp4.py)

The seed (hex) is derived from what was asked for, so the same request always
points at the same file. The faults `pad=N` (a larger file) and `drop=N` (the
connection cut after N bytes) apply to them (faults.py)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox import mp4, png, serving
from sandbox.faults import Fault

MAX_SIDE = 1536  # the largest image side, in pixels, the sandbox renders
MAX_VIDEO_MILLIS = 86_400_000


def image_url(request: Request, seed: str, width: int, height: int) -> str:
    return f"{serving.base_url(request)}/files/images/{seed}/{width}x{height}.png"


def video_url(request: Request, seed: str, millis: int) -> str:
    return f"{serving.base_url(request)}/files/videos/{seed}/{millis}.mp4"


async def image(request: Request) -> Response:
    seed_hex, size = request.path_params["seed"], request.path_params["size"]

    async def produce(fault: Fault) -> Response:
        try:
            seed = bytes.fromhex(seed_hex)
            width, height = (int(side) for side in size.split("x"))
            if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or len(seed) < 7:
                raise ValueError(size)
        except ValueError:
            return Response("no such image", 404, media_type="text/plain")
        rendered = await asyncio.to_thread(png.render, seed, width, height)
        if fault.pad:
            rendered = png.padded(rendered, fault.pad)
        return _file(rendered, "image/png", fault)

    return await serving.of(request).serve(request, b"", "", produce)


async def video(request: Request) -> Response:
    millis = request.path_params["millis"]

    async def produce(fault: Fault) -> Response:
        if not millis.isdigit() or int(millis) > MAX_VIDEO_MILLIS:
            return Response("no such video", 404, media_type="text/plain")
        return _file(mp4.placeholder(int(millis), pad=fault.pad or 0), "video/mp4", fault)

    return await serving.of(request).serve(request, b"", "", produce)


def _file(data: bytes, media_type: str, fault: Fault) -> Response:
    if fault.drop is not None and fault.drop < len(data):
        return _Dropped(data, media_type, fault.drop)
    return Response(data, media_type=media_type)


class _Dropped(Response):
    """The whole file's length announced, its first `after` bytes sent, then the
    connection cut (the body never ends)."""

    def __init__(self, data: bytes, media_type: str, after: int) -> None:
        super().__init__(data, media_type=media_type)
        self.after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        body = self.body[: self.after]
        for start in range(0, len(body), 64 * 1024):
            chunk = body[start : start + 64 * 1024]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        # Return without ending the body: the server cuts the connection.


ROUTES = [
    Route("/files/images/{seed}/{size}.png", image, methods=["GET"]),
    Route("/files/videos/{seed}/{millis}.mp4", video, methods=["GET"]),
]
