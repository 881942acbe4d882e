"""The files the sandbox's results point at, and where they are:

    GET  /files/images/{seed}/{W}x{H}.png      a result image (a real PNG, png.py)
    GET  /files/videos/{seed}/{ms}.mp4         a result video (an MP4 placeholder, mp4.py)

The seed (hex) is derived from what was asked for, so the same request always
points at the same file."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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
        return Response(rendered, media_type="image/png")

    return await serving.of(request).serve(request, b"", "", produce)


async def video(request: Request) -> Response:
    millis = request.path_params["millis"]

    async def produce(fault: Fault) -> Response:
        if not millis.isdigit() or int(millis) > MAX_VIDEO_MILLIS:
            return Response("no such video", 404, media_type="text/plain")
        return Response(mp4.placeholder(int(millis)), media_type="video/mp4")

    return await serving.of(request).serve(request, b"", "", produce)


ROUTES = [
    Route("/files/images/{seed}/{size}.png", image, methods=["GET"]),
    Route("/files/videos/{seed}/{millis}.mp4", video, methods=["GET"]),
]
