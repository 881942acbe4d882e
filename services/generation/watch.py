"""WatchJob: one client's view of a job as it runs, from any replica.

The watcher subscribes to the job's live events (streams.py) *before* it reads the
job row, so nothing published after the read can be missed; the row gives the text
so far (the snapshot, or on resume the text after `last_event_id`). From then on it
tracks `sent`, the number of characters the client has, and every delta is placed
by its offset:

- one that ends at or before `sent` is a repeat and is dropped (the row already
  covered it);
- one that starts at or before `sent` is sent from `sent` on;
- one that starts after `sent` leaves a gap (published before the subscription, or
  lost): it waits while the row is read again, quickly, until the row's text
  closes the gap — the worker saves it every `stream_save_seconds` — and the
  missing text goes out first.

So the client sees each character once, in order. Status changes come as `job`
events; a change whose message was lost is found by reading the row every
`POLL_SECONDS`. The last event is the finished job, after any text the client
had not yet been sent (the finished job's result has the whole reply)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from kit.errors import InvalidArgument
from klik.generation.v1 import generation_pb2
from services.generation.domain import Job, is_job_id, job_not_found
from services.generation.streams import JobStreams

if TYPE_CHECKING:  # jobs.py -> events.py -> api.py -> here
    from services.generation.jobs import Jobs

# How often a watcher reads the row when nothing arrives, and while it waits for
# the row to close a gap.
POLL_SECONDS = 1.0
GAP_POLL_SECONDS = 0.05


def text_of(job: Job) -> str:
    """The reply as far as the row has it."""
    if job.result is not None and job.result.text:
        return job.result.text
    return job.partial_text


def _position(last_event_id: str) -> int | None:
    if not last_event_id:
        return None
    if not last_event_id.isdigit() or len(last_event_id) > 12:
        raise _invalid_event_id(last_event_id, "is not an event id of this stream")
    return int(last_event_id)


# What a stream sends: WatchJob's events, or StreamJob's (the same fields).
Event = generation_pb2.WatchJobResponse | generation_pb2.StreamJobResponse


class Watch:
    """One WatchJob (or StreamJob) call."""

    def __init__(
        self,
        jobs: Jobs,
        streams: JobStreams,
        job_message: Callable[[Job], generation_pb2.Job],
        user_id: str,
        job_id: str,
        response: type[Event] = generation_pb2.WatchJobResponse,
    ) -> None:
        self.response = response
        self.jobs = jobs
        self.streams = streams
        self.job_message = job_message
        self.user_id = user_id
        self.job_id = job_id
        self.sent = 0
        self.tokens = 0  # the latest running figures seen, for text sent from the row
        self.cost = 0
        self.ahead: dict[int, generation_pb2.JobDelta] = {}  # deltas past a gap, by offset

    async def events(self, last_event_id: str, created: Job | None = None) -> AsyncIterator[Event]:
        """The stream; `created`: the job as StreamJob just created it, taken for the
        first read of the row (it was read before the subscription, so whatever
        happened in between arrives as a gap or a status change the row fills)."""
        resume_at = _position(last_event_id)
        # Subscribed before the row is read (see the module docstring); an unknown
        # job is NOT_FOUND from that read, and the subscription ends with the call.
        # Only a well-formed id becomes part of a subject (never a wildcard).
        if not is_job_id(self.job_id):
            raise job_not_found(self.job_id)
        async with self.streams.subscribe(self.job_id) as inbox:
            job = created or await self.jobs.get(self.user_id, self.job_id)
            text = text_of(job)
            if resume_at is None:
                if text:
                    self.sent = len(text)
                    yield self._event(snapshot=generation_pb2.JobText(text=text))
            else:
                if resume_at > len(text) and job.status.finished:
                    raise _invalid_event_id(last_event_id, "is past the end of this job's text")
                self.sent = resume_at
                for event in self._from_row(text):
                    yield event
            yield self._event(job=self.job_message(job))
            status = job.status
            while not status.finished:
                wait = GAP_POLL_SECONDS if self.ahead else POLL_SECONDS
                try:
                    async with asyncio.timeout(wait):
                        message = await inbox.get()
                except TimeoutError:
                    message = None
                if message is not None and message.WhichOneof("event") == "delta":
                    for event in self._place(message.delta):
                        yield event
                    continue
                if message is not None and message.job.status == status.value:
                    continue
                # A status change (or a quiet moment, or a gap): the row is the truth.
                job = await self.jobs.get(self.user_id, self.job_id)
                for event in self._from_row(text_of(job)):
                    yield event
                if job.status is not status:
                    status = job.status
                    yield self._event(job=self.job_message(job))

    def _place(self, delta: generation_pb2.JobDelta) -> list[Event]:
        self.tokens, self.cost = delta.tokens, delta.cost_credits
        if delta.offset > self.sent:
            self.ahead[delta.offset] = delta
            return []
        events = []
        end = delta.offset + len(delta.text)
        if end > self.sent:
            events.append(self._delta(delta.text[self.sent - delta.offset :]))
        return events + self._drain()

    def _from_row(self, text: str) -> list[Event]:
        """What the row has beyond `sent`, then any waiting deltas it connects."""
        events = []
        if len(text) > self.sent:
            events.append(self._delta(text[self.sent :]))
        return events + self._drain()

    def _drain(self) -> list[Event]:
        events = []
        for offset in sorted(self.ahead):
            if offset > self.sent:
                break
            delta = self.ahead.pop(offset)
            end = offset + len(delta.text)
            if end > self.sent:
                events.append(self._delta(delta.text[self.sent - offset :]))
        return events

    def _delta(self, text: str) -> Event:
        offset = self.sent
        self.sent += len(text)
        return self._event(
            delta=generation_pb2.JobDelta(
                text=text, offset=offset, tokens=self.tokens, cost_credits=self.cost
            )
        )

    def _event(self, **event: object) -> Event:
        return self.response(event_id=str(self.sent), **event)  # type: ignore[arg-type]


def _invalid_event_id(last_event_id: str, why: str) -> InvalidArgument:
    return InvalidArgument(
        "INVALID_EVENT_ID",
        f"last_event_id {why}",
        details={"last_event_id": last_event_id[:40]},
    )
