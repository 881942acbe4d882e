"""What a worker does with a reply as it streams (runner.ReplyProgress): every piece
goes out at once to the job's watchers on any replica (streams.py), and the text so
far is saved to the job row at most every `stream_save_seconds`, in the background,
so a watcher that joins late can catch up from it without the stream ever waiting
for the database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from klik.generation.v1 import generation_pb2
from services.generation.streams import JobStreams

log = logging.getLogger(__name__)

SaveText = Callable[[str], Awaitable[bool]]


class StreamProgress:
    def __init__(
        self, job_id: str, streams: JobStreams, save: SaveText, save_seconds: float
    ) -> None:
        self.job_id = job_id
        self.streams = streams
        self.save = save
        self.save_seconds = save_seconds
        self.cancel = asyncio.Event()
        self._parts: list[str] = []
        self._saved_at = 0.0  # time.monotonic() of the last save started
        self._saving: asyncio.Task[None] | None = None
        self._dirty = False  # text arrived since the last save started

    async def delta(self, text: str, offset: int, tokens: int, cost: int) -> None:
        self._parts.append(text)
        await self.streams.publish(
            self.job_id,
            generation_pb2.WatchJobResponse(
                event_id=str(offset + len(text)),
                delta=generation_pb2.JobDelta(
                    text=text, offset=offset, tokens=tokens, cost_credits=cost
                ),
            ),
        )
        self._dirty = True
        self._save_soon()

    def _save_soon(self) -> None:
        """Start a save unless one runs or one started less than an interval ago; a
        save that ends finds what arrived meanwhile and schedules the next."""
        if self._saving is not None and not self._saving.done():
            return
        wait = self._saved_at + self.save_seconds - time.monotonic()
        self._saving = asyncio.create_task(self._save(max(wait, 0.0)), name="reply-save")

    async def _save(self, after: float) -> None:
        if after:
            await asyncio.sleep(after)
        self._saved_at = time.monotonic()
        self._dirty = False
        try:
            await self.save("".join(self._parts))
        except Exception:
            log.warning("cannot save a reply so far", exc_info=True, extra={"job_id": self.job_id})
        if self._dirty:
            self._saving = asyncio.create_task(
                self._save(max(self._saved_at + self.save_seconds - time.monotonic(), 0.0)),
                name="reply-save",
            )

    async def close(self) -> None:
        """Stop saving: the job is ending (its final text goes with its status)."""
        if self._saving is not None:
            self._saving.cancel()
            await asyncio.wait({self._saving})
