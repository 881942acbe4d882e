"""Server-sent events read from a streamed httpx response, each line read under a
time limit, so a stream that stalls fails instead of holding its reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Event:
    name: str  # the `event:` field; "" when there is none
    data: str  # the `data:` lines, joined by newlines


async def events(response: httpx.Response, limit: Callable[[], float]) -> AsyncIterator[Event]:
    """The events of `response`'s body, in order, until it ends (an event cut off by
    the end is dropped, as the SSE standard says). Waiting more than `limit()`
    seconds for a line raises TimeoutError."""
    lines = response.aiter_lines()
    name, data = "", list[str]()
    while True:
        async with asyncio.timeout(limit()):
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return
        if not line:
            if data:
                yield Event(name, "\n".join(data))
            name, data = "", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        # ":" comments (keep-alives), `id:` and `retry:` are not used
