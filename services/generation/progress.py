"""What a worker does with a reply as it streams (runner.ReplyProgress): every piece
goes out at once to the job's watchers on any replica (streams.py), and the text so
far is saved to the job row at most every `stream_save_seconds`, in the background
(every reply of the replica in one transaction), so a watcher that joins late can
catch up from it without the stream ever waiting for the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from klik.generation.v1 import generation_pb2
from services.generation.streams import JobStreams

log = logging.getLogger(__name__)

# (job id, lease owner, the reply so far) of each reply to save.
SaveTexts = Callable[[list[tuple[str, str, str]]], Awaitable[None]]


class ReplySaver:
    """The replies streaming on this replica, saved together: one transaction every
    `interval` writes the text so far of every reply that grew meanwhile. A reply
    saved on its own every interval cost each replica a transaction per reply per
    interval (200 streams, 800 a second: a sixth of the generation process's CPU
    under bench.stream_ttft, by py-spy).

    A reply's first text is saved at once, with whatever else grew, without
    waiting for the interval: a watcher that subscribed after the first deltas went
    out (a job now often starts before its creator's `:watch` is open) closes that
    gap from the row, and it should not wait an interval to. That is at most one
    more save per reply begun."""

    def __init__(self, save: SaveTexts, interval: float) -> None:
        self.save = save
        self.interval = interval
        self._grown: dict[str, tuple[str, StreamProgress]] = {}  # job id -> owner, reply
        self._flushing: asyncio.Task[None] | None = None
        self._flushed_at = float("-inf")  # the loop's time of the last save started
        self._begun: set[str] = set()  # replies saved at least once
        self._now = asyncio.Event()  # a reply began: save without waiting

    def grew(self, job_id: str, owner: str, reply: StreamProgress) -> None:
        self._grown[job_id] = (owner, reply)
        if job_id not in self._begun:
            self._begun.add(job_id)
            self._now.set()
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="reply-saves")

    def forget(self, job_id: str) -> None:
        """The job is ending: its final text goes with its status, not from here (and
        a save already under way changes nothing once it is not RUNNING)."""
        self._grown.pop(job_id, None)
        self._begun.discard(job_id)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._grown:
            # At once after a quiet interval (a joiner finds the reply's start soon),
            # else the rest of the interval: at most one save per interval.
            wait = self._flushed_at + self.interval - loop.time()
            if wait > 0 and not self._now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), wait)
            self._now.clear()
            grown, self._grown = self._grown, {}
            if not grown:  # the only replies waiting ended meanwhile: nothing to write
                break
            self._flushed_at = loop.time()
            rows = [(job_id, owner, reply.text) for job_id, (owner, reply) in grown.items()]
            try:
                await self.save(rows)
            except Exception:
                log.warning(
                    "cannot save the replies so far", exc_info=True, extra={"jobs": len(rows)}
                )


class StreamProgress:
    def __init__(self, job_id: str, owner: str, streams: JobStreams, saver: ReplySaver) -> None:
        self.job_id = job_id
        self.owner = owner
        self.streams = streams
        self.saver = saver
        self.cancel = asyncio.Event()
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

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
        self.saver.grew(self.job_id, self.owner, self)

    async def close(self) -> None:
        """Stop saving: the job is ending (its final text goes with its status)."""
        self.saver.forget(self.job_id)
