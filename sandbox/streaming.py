"""Streamed replies (server-sent events), whichever API's events they carry, and the
sandbox's record of them.

A system's handler writes its events as a `Script` (what comes before the tokens,
one event per token, what comes after) and answers with `EventStream`, which sends
them honouring the stream faults (faults.py: `rate`, `drop`, `stall`) and records
how the stream went in the sandbox's `StreamLog` (`GET /_sandbox/streams`):

    completed       every event was sent and the body ended
    client_closed   the client went away before the end
    dropped         the sandbox cut the connection (`drop`)
    stalled         the stream stalled (`stall`), then the client went away

A record's `ended` is null while its stream runs; `tokens` counts the token events
sent so far."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.faults import Fault

STREAMS_KEPT = 200


def event(data: Mapping[str, Any] | str, name: str = "") -> bytes:
    """One server-sent event: `data: <json>` (or the text as is), after `event:
    <name>` when it has one."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


@dataclass
class StreamRecord:
    seq: int
    id: str
    model: str
    path: str
    started_at: float = field(default_factory=time.time)
    tokens: int = 0
    stalled: bool = False
    ended: str | None = None
    ended_at: float | None = None

    def end(self, how: str) -> None:
        if self.ended is None:
            self.ended, self.ended_at = how, time.time()

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "model": self.model,
            "path": self.path,
            "started_at": self.started_at,
            "tokens": self.tokens,
            "stalled": self.stalled,
            "ended": self.ended,
            "ended_at": self.ended_at,
        }


class StreamLog:
    """The most recent streams (STREAMS_KEPT of them), oldest first."""

    def __init__(self, limit: int = STREAMS_KEPT) -> None:
        self._records: deque[StreamRecord] = deque(maxlen=limit)
        self._seq = itertools.count(1)

    def open(self, id: str, model: str, path: str) -> StreamRecord:
        record = StreamRecord(next(self._seq), id, model, path)
        self._records.append(record)
        return record

    def listed(self, prefix: str = "") -> list[dict[str, Any]]:
        return [r.public() for r in self._records if r.path.startswith(prefix)]

    def clear(self) -> None:
        self._records.clear()


@dataclass(frozen=True)
class Script:
    """A stream's events: `head` before the tokens, one event per token, `tail`
    after them."""

    head: Sequence[bytes]
    tokens: Sequence[bytes]
    tail: Sequence[bytes]


class EventStream(Response):
    """A `text/event-stream` answer playing a `Script` under a fault. It watches for
    the client going away while it plays, so a close is recorded when it happens
    (not at the next write), also while it stalls."""

    media_type = "text/event-stream"

    def __init__(self, script: Script, fault: Fault, record: StreamRecord) -> None:
        self.script, self.fault, self.record = script, fault, record
        self.status_code = 200
        self.background: BackgroundTask | None = None
        self.init_headers({"cache-control": "no-cache"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = self.record
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            player = asyncio.ensure_future(self._play(send))
            watcher = asyncio.ensure_future(_disconnect(receive))
            try:
                await asyncio.wait({player, watcher}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (player, watcher):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if player.done() and not player.cancelled():
                player.result()  # raise what went wrong
        finally:
            record.end("stalled" if record.stalled else "client_closed")

    async def _play(self, send: Send) -> None:
        fault, record = self.fault, self.record

        async def write(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        for chunk in self.script.head:
            await write(chunk)
        for i, chunk in enumerate(self.script.tokens):
            if i == fault.drop:
                # Return without ending the body: the server cuts the connection.
                record.end("dropped")
                return
            if i == fault.stall:
                record.stalled = True
                await asyncio.Event().wait()  # until the watcher sees the client go
            if i and fault.rate:
                await asyncio.sleep(1 / fault.rate)
            else:
                await asyncio.sleep(0)  # let the watcher see a close between tokens
            await write(chunk)
            record.tokens += 1
        for chunk in self.script.tail:
            await write(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        record.end("completed")


async def _disconnect(receive: Receive) -> None:
    """Returns when the client has gone (the request body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
