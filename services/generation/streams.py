"""A streaming job's live events between replicas, over core NATS subjects.

The worker running a TEXT/CHAT job publishes each piece of text as it arrives
(`WatchJobResponse.delta`, with its offset in the reply) and every change of the
job's status (`WatchJobResponse.job`) on `klik.generation.stream.<job id>`; any
replica serving WatchJob for that job subscribes there (watch.py). CancelJob asks
the worker, wherever it runs, to stop its stream on `klik.generation.cancel`, and a
provider's callback wakes the poll of its job on `klik.generation.wake`.

Core subjects rather than a JetStream stream: a delta is worth something for a
second or two, to the clients watching then, and a stream would store and
acknowledge every token of every reply (a disk write and a round trip each) for
nobody. What must not be lost is kept elsewhere: the job row has the reply so far
(saved at a bounded rate, `KLIK_JOB_STREAM_SAVE_SECONDS`) and its final text, so a
watcher that joins late, or misses deltas (a reconnect, a slow consumer), catches up
from the row by offset — no gap, no repeat — and a missed status change is found by
its poll of the row. Publishing is best effort for the same reason: it never fails
the job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from kit.bus import unsubscribe_quietly
from kit.server import Resources
from klik.generation.v1 import generation_pb2

log = logging.getLogger(__name__)

STREAM_PREFIX = "klik.generation.stream."
CANCEL_SUBJECT = "klik.generation.cancel"
# A provider called back about one of its jobs (payload: its provider job id).
WAKE_SUBJECT = "klik.generation.wake"


def stream_subject(job_id: str) -> str:
    return STREAM_PREFIX + job_id


class JobStreams:
    """This replica's end of the job streams (its NATS connection comes with
    `resources` once the service is ready)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def publish(self, job_id: str, message: generation_pb2.WatchJobResponse) -> None:
        await self._send(stream_subject(job_id), message.SerializeToString())

    async def request_cancel(self, job_id: str) -> None:
        await self._send(CANCEL_SUBJECT, job_id.encode())

    async def wake(self, provider_job_id: str) -> None:
        await self._send(WAKE_SUBJECT, provider_job_id.encode())

    async def _send(self, subject: str, data: bytes) -> None:
        nats = self.resources.nats
        if nats is None or nats.is_closed:
            return
        try:
            await nats.publish(subject, data)
        except Exception as error:  # best effort: see the module docstring
            log.debug("cannot publish on %s: %s", subject, error)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, job_id: str
    ) -> AsyncIterator[asyncio.Queue[generation_pb2.WatchJobResponse]]:
        """The job's live events, in order, from now on, for as long as the context
        lasts. Without a connection the queue stays empty (the watcher's poll of the
        row then does all the work)."""
        inbox: asyncio.Queue[generation_pb2.WatchJobResponse] = asyncio.Queue()

        async def received(msg: Msg) -> None:
            message = generation_pb2.WatchJobResponse()
            try:
                message.ParseFromString(msg.data)
            except Exception:
                log.warning("dropped a malformed job stream message on %s", msg.subject)
                return
            inbox.put_nowait(message)

        subscription = await self._subscribe(stream_subject(job_id), received)
        try:
            yield inbox
        finally:
            if subscription is not None:
                await unsubscribe_quietly(subscription, "job stream")

    async def cancel_requests(self, cancel: Callable[[str], None]) -> Subscription | None:
        """Have `cancel(job_id)` called for every cancel request, from any replica."""
        return await self._listen(CANCEL_SUBJECT, cancel)

    async def wakes(self, wake: Callable[[str], object]) -> Subscription | None:
        """Have `wake(provider_job_id)` called for every provider callback heard by
        any replica."""
        return await self._listen(WAKE_SUBJECT, wake)

    async def _listen(self, subject: str, call: Callable[[str], object]) -> Subscription | None:
        async def received(msg: Msg) -> None:
            call(msg.data.decode(errors="replace"))

        return await self._subscribe(subject, received)

    async def _subscribe(
        self, subject: str, callback: Callable[[Msg], Awaitable[None]]
    ) -> Subscription | None:
        nats = self.resources.nats
        if nats is None or nats.is_closed:
            return None
        try:
            return await nats.subscribe(subject, cb=callback)
        except Exception as error:
            log.warning("cannot subscribe to %s: %s", subject, error)
            return None
