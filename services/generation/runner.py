"""Running one job on its provider: the request the adapter needs, the provider job
started (and its id stored) before it is polled, the media fetched from the
provider's expiring URLs into the asset store, the result and its actual price.

Resuming is what makes a worker's death harmless: a media job whose provider job
id is stored is polled again, never started again. Before the (paid) start call the
worker stores its intent (`StartRecord.intent`); a media job found RUNNING with the
intent and no stored id may have been started by the worker that died (it died
while the call was in flight, before storing the answer), so it is looked up on the
provider by its reference (`reference`: HeyGen keeps it as the video's title and
callback id; Leonardo keeps none, so its generations since the intent are matched by
what was asked) and, found, polled like any other: it succeeds with its result. It
fails only when the provider shows no such job, and is never started again, so the
provider is never paid twice. A job found without the intent never reached the
start call, and simply starts.

A text reply streams (`_reply`): each piece goes to the job's watchers as it
arrives (through `ReplyProgress`), and the reply is charged to the token. A stream
leaves nothing on the provider's side, so a resumed job whose reply had not begun
is simply asked for again; one that fails after its first token is not restarted
(its watchers have seen the text), nor is one resumed with text saved (its worker
died mid-stream): the job fails and the text delivered is charged. CancelJob stops
a stream the same way (`ReplyProgress.cancel`): closed, the text so far charged.

A reply is routed: a job created with a model alias tries the alias's candidates in
order, skipping one whose circuit is open or that fails before its first piece of
text; the provider and model whose reply began are recorded on the job
(`record_served`) and price it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

import httpx

from kit.assets import AssetSettings, AssetStore, asset_key
from kit.backoff import Backoff
from kit.clock import utc_now
from kit.errors import DomainError
from services.generation import metrics, replies
from services.generation.catalogue import Model, Route
from services.generation.domain import Failure, Job, Kind, Result, video_size
from services.generation.providers.errors import (
    ContentRejected,
    ProviderError,
    StreamInterrupted,
)
from services.generation.providers.registry import Providers
from services.generation.providers.values import (
    ImageRequest,
    MediaResult,
    TextEnd,
    TextRequest,
    Turn,
    VideoRequest,
)
from services.generation.settings import GenerationSettings

MEDIA_ATTEMPTS = 3
# What an input image may be stored as (runner._store keeps the provider's type).
INPUT_TYPES = ("image/png", "image/jpeg", "image/webp")
# Between attempts at a result file: 0.4 s, then 0.8 s (no jitter: one waiter).
FETCH_BACKOFF = Backoff(base_seconds=0.4, cap_seconds=0.8, jitter="none")
# Fetching the result files must end this long before the job's hold expires, so
# the capture that follows still finds the hold (else the job would be free).
CAPTURE_RESERVE_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    result: Result
    cost: int  # the actual price, in credits
    cancelled: bool = False  # stopped by CancelJob: the reply so far, charged


class JobFailed(Exception):
    """The job cannot succeed: `code` is its JobError.code; `partial` the reply it
    had streamed before it failed (charged), if any."""

    def __init__(self, code: str, message: str, partial: Outcome | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.partial = partial


class StartLookupFailed(Exception):
    """A start whose answer was lost could not be looked up on the provider (it is
    down, slow or refusing): no verdict on the job, which is tried again later."""


class ReplyProgress(Protocol):
    """Where a streaming reply goes as it arrives (the worker's progress.py)."""

    # Set when CancelJob asks this job to stop.
    cancel: asyncio.Event

    async def delta(self, text: str, offset: int, tokens: int, cost: int) -> None:
        """`text` arrived at `offset` of the reply: `tokens` in, `cost` credits so far."""


class _NoProgress:
    """For a reply nobody watches (tests that call the runner alone)."""

    def __init__(self) -> None:
        self.cancel = asyncio.Event()

    async def delta(self, text: str, offset: int, tokens: int, cost: int) -> None:
        return None


class StartRecord(Protocol):
    """Where a media job's start on its provider is recorded (the worker's jobs.py):
    each method answers False (None) when the job is no longer this worker's."""

    async def intent(self) -> bool:
        """Store that the start is about to be asked for (before the paid call)."""

    async def started(self, provider_job_id: str) -> bool:
        """Store the provider's job id, before it is polled."""

    async def unclaimed(self, provider_job_ids: list[str]) -> str | None:
        """The first of these provider job ids no job stored as its own yet."""


def reference(job: Job) -> str:
    """The job's reference on its provider: how a start whose answer was lost is
    found again."""
    return f"klik-{job.id}"


RecordServed = Callable[[str, str], Awaitable[bool]]


async def _record_nothing(provider: str, model: str) -> bool:
    return True


def _unserved(route: Route, skipped: list[ProviderError]) -> ProviderError:
    """Why no candidate gave a reply: the last one's error, naming every one's when
    there were several (an alias)."""
    last = skipped[-1]
    if len(skipped) == 1:
        return last
    tried = "; ".join(f"{e.provider}: {e.message}" for e in skipped)
    return type(last)(last.provider, f"no model of {route.alias!r} could reply ({tried})")


def _image_request(job: Job, init_image_id: str) -> ImageRequest:
    options = job.options
    return ImageRequest(
        model=job.model,
        prompt=job.prompt,
        negative_prompt=options.negative_prompt,
        width=options.width,
        height=options.height,
        num_images=max(options.num_images, 1),
        init_image_id=init_image_id,
        init_strength=options.init_strength or 0.5,
    )


def _video_request(job: Job) -> VideoRequest:
    options = job.options
    return VideoRequest(
        model=job.model,
        script=job.prompt,
        avatar_id=options.avatar_id,
        voice_id=options.voice_id,
        size=video_size(options),
        reference=reference(job),
    )


class Runner:
    def __init__(
        self,
        settings: GenerationSettings,
        providers: Providers,
        assets: AssetStore,
        asset_settings: AssetSettings,
    ) -> None:
        self.settings = settings
        self.providers = providers
        self.assets = assets
        self.asset_settings = asset_settings

    async def run(
        self,
        job: Job,
        *,
        resumed: bool,
        starts: StartRecord,
        progress: ReplyProgress | None = None,
        record_served: RecordServed | None = None,
    ) -> Outcome | None:
        """The job's outcome; None when it stopped being this worker's (cancelled)
        before the provider was polled. Raises JobFailed. `record_served` is told the
        provider and model whose reply began when they are not the job's own (an
        alias's fallback)."""
        record_served = record_served or _record_nothing
        began, outcome = time.monotonic(), "failed"
        try:
            result = await self._run(job, resumed, starts, progress or _NoProgress(), record_served)
            outcome = "stopped" if result is None or result.cancelled else "succeeded"
            return result
        except ProviderError as error:
            raise JobFailed(error.reason, error.message) from None
        except DomainError as error:  # e.g. the catalogue no longer has the model
            raise JobFailed(Failure.PROVIDER_ERROR, error.message) from None
        finally:
            metrics.PROVIDER_SECONDS.labels(job.provider, job.kind.value, outcome).observe(
                time.monotonic() - began
            )

    async def _run(
        self,
        job: Job,
        resumed: bool,
        starts: StartRecord,
        progress: ReplyProgress,
        record_served: RecordServed,
    ) -> Outcome | None:
        deadline = self._deadline(job)
        if job.kind.is_text:
            if resumed and job.partial_text:
                # Its watchers saw this text: another reply would contradict it.
                result, cost = await replies.priced_reply(
                    self.settings, job, job.partial_text, None
                )
                raise JobFailed(
                    Failure.STREAM_INTERRUPTED,
                    "the reply was interrupted mid-stream; it is not started again, "
                    "and the text delivered is charged",
                    partial=Outcome(result, cost),
                )
            route = self.settings.catalogue.route(job.kind, job.provider, job.model, job.alias)
            return await self._reply(job, route, deadline, progress, record_served)
        _, model = self.settings.catalogue.resolve(job.kind, job.provider, job.model)
        media = await self._media(job, resumed, deadline, starts)
        if media is None:
            return None
        result = await self._store(job, media)
        hd = job.options.quality == "1080p"
        return Outcome(result, self.settings.prices.actual(job.kind, model, result.usage, hd=hd))

    def _request(self, job: Job, model: Model) -> TextRequest:
        options = job.options
        return TextRequest(
            model=model.id,
            prompt=job.prompt,
            system_prompt=options.system_prompt,
            history=tuple(Turn(t.role, t.content) for t in options.history),
            # The cap the hold was priced on: the job can never cost more.
            max_tokens=options.max_tokens or model.max_tokens,
            temperature=options.temperature,
        )

    async def _reply(
        self,
        job: Job,
        route: Route,
        deadline: float,
        progress: ReplyProgress,
        record_served: RecordServed,
    ) -> Outcome:
        """Stream the reply to `progress` until it ends, fails or is cancelled, from
        the first of the route's candidates that can give one: a candidate whose
        circuit is open, or that fails before its first piece of text (its adapter
        has retried what was worth retrying), is skipped for the next; a refusal
        (CONTENT_REJECTED) is not, nor is anything after the first piece. The reply
        is priced at the model that gave it (`served`)."""
        prompt_tokens = replies.prompt_estimate(job)
        parts: list[str] = []
        size = 0  # characters so far
        pieces = 0  # chunks so far: about one token each
        end: TextEnd | None = None
        served = job  # the job as its reply is priced: provider and model of the reply
        skipped: list[ProviderError] = []

        async def attempt(candidate: Job, model: Model) -> None:
            nonlocal size, pieces, end, served
            adapter = self.providers.text(candidate.provider)
            stream = adapter.stream(self._request(candidate, model), deadline=deadline)
            began = False
            try:
                async for item in stream:
                    if not began:
                        began, served = True, candidate
                        if (candidate.provider, candidate.model) != (job.provider, job.model):
                            await record_served(candidate.provider, candidate.model)
                    if isinstance(item, TextEnd):
                        end = item
                        continue
                    offset, size, pieces = size, size + len(item.text), pieces + 1
                    parts.append(item.text)
                    cost = replies.running_cost(self.settings, served, prompt_tokens, pieces)
                    await progress.delta(item.text, offset, pieces, cost)
            except ProviderError as error:
                if began or isinstance(error, ContentRejected):
                    raise
                skipped.append(error)
            finally:
                await stream.aclose()  # the provider sees its stream closed at once

        async def consume() -> None:
            for provider, model in route.candidates:
                if self.providers.is_open(provider.name):
                    skipped.append(self.providers.unavailable(provider.name))
                    continue
                before = len(skipped)
                await attempt(replace(job, provider=provider.name, model=model.id), model)
                if len(skipped) == before:
                    return
            raise _unserved(route, skipped)

        consumer = asyncio.create_task(consume(), name=f"job-{job.id}-stream")
        stop = asyncio.create_task(progress.cancel.wait())
        try:
            await asyncio.wait({consumer, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            consumer.cancel()  # no-op once it ended; else closes the provider's stream
            await asyncio.wait({consumer})
        text = "".join(parts)
        if consumer.cancelled():  # CancelJob: the text so far, charged
            result, cost = await replies.priced_reply(self.settings, served, text, None)
            return Outcome(result, cost, cancelled=True)
        error = consumer.exception()
        if error is None and end is None:
            error = StreamInterrupted(served.provider, "the stream ended without finishing")
        if error is not None:
            if not text or not isinstance(error, ProviderError):
                raise error
            # Not restarted elsewhere: its watchers already saw the text.
            result, cost = await replies.priced_reply(self.settings, served, text, None)
            raise JobFailed(error.reason, error.message, partial=Outcome(result, cost))
        assert end is not None
        result, cost = await replies.priced_reply(self.settings, served, text, end.usage)
        return Outcome(result, cost)

    def _deadline(self, job: Job) -> float:
        """The job's deadline on the time.monotonic() clock the adapters use."""
        assert job.deadline_at is not None, "a running job has a deadline"
        return time.monotonic() + (job.deadline_at - utc_now()).total_seconds()

    async def _media(
        self, job: Job, resumed: bool, deadline: float, starts: StartRecord
    ) -> MediaResult | None:
        provider_job_id = job.provider_job_id
        if not provider_job_id and resumed and job.start_requested_at is not None:
            found = await self._find_started(job, deadline, starts)
            if found is None:
                raise JobFailed(
                    Failure.PROVIDER_ERROR,
                    "the job was interrupted while starting on the provider, and the "
                    "provider has no such job; it is not started again",
                )
            provider_job_id = found
            if not await starts.started(provider_job_id):
                return None
        elif not provider_job_id:
            # An input image goes to the provider first (an upload charges nothing,
            # so an interrupted one is simply made again).
            init_image_id = (
                await self._upload_input(job, deadline) if job.options.input_job_id else ""
            )
            if not await starts.intent():
                return None
            if job.kind is Kind.IMAGE:
                images = self.providers.images(job.provider)
                started = await images.start(_image_request(job, init_image_id), deadline=deadline)
            elif job.kind is Kind.IMAGE_TO_VIDEO:
                started = await self.providers.images(job.provider).start_motion(
                    init_image_id, strength=job.options.motion_strength or 5, deadline=deadline
                )
            else:
                videos = self.providers.videos(job.provider)
                started = await videos.start(_video_request(job), deadline=deadline)
            provider_job_id = started.job_id
            if not await starts.started(provider_job_id):
                return None
        with self.providers.wakeups.watching(provider_job_id) as wake:
            if job.kind is Kind.AVATAR_VIDEO:
                videos = self.providers.videos(job.provider)
                return await videos.wait(provider_job_id, deadline=deadline, wake=wake)
            return await self.providers.images(job.provider).wait(
                provider_job_id,
                deadline=deadline,
                wake=wake,
                motion=job.kind is Kind.IMAGE_TO_VIDEO,
            )

    async def _look_up(self, job: Job, deadline: float, starts: StartRecord) -> str | None:
        """The provider job a worker that died started for `job` (its start asked for
        at `job.start_requested_at`), by the job's reference; None when the
        provider shows none that no other job stored as its own."""
        assert job.start_requested_at is not None
        since = job.start_requested_at
        if job.kind is Kind.AVATAR_VIDEO:
            videos = self.providers.videos(job.provider)
            found = await videos.find(reference(job), since=since, deadline=deadline)
        else:
            # Leonardo keeps no reference: matched by what was asked for (the init
            # image's id at Leonardo is not known any more, and does not matter).
            request = _image_request(job, "") if job.kind is Kind.IMAGE else None
            images = self.providers.images(job.provider)
            found = await images.find(request, since=since, deadline=deadline)
        return await starts.unclaimed(found) if found else None

    async def _find_started(self, job: Job, deadline: float, starts: StartRecord) -> str | None:
        """`_look_up`, where a lookup that fails (the provider down, slow, refusing)
        is no verdict: StartLookupFailed, so the job is not failed but left to its
        lease, and looked up again by the next claim (up to the job's attempts)."""
        try:
            return await self._look_up(job, deadline, starts)
        except ProviderError as error:
            raise StartLookupFailed(
                f"{job.provider}: cannot look the started job up ({error.message})"
            ) from None

    async def _upload_input(self, job: Job, deadline: float) -> str:
        """Upload the job's input image (one of the caller's stored results) to the
        provider; its init image id there."""
        options = job.options
        for mime_type in INPUT_TYPES:
            key = asset_key(options.input_job_id, options.input_index, mime_type)
            if await self.assets.stat(key) is None:
                continue
            data = b"".join([chunk async for chunk in self.assets.read(key)])
            images = self.providers.images(job.provider)
            return await images.upload_init_image(data, mime_type, deadline=deadline)
        raise JobFailed(
            Failure.INTERNAL, "the input image is no longer stored; nothing was charged"
        )

    async def _store(self, job: Job, media: MediaResult) -> Result:
        """Copy the provider's files into the asset store (keys derived from the job,
        so a resumed job overwrites rather than duplicates)."""
        keys = []
        budget = (job.hold_expires_at - utc_now()).total_seconds()
        try:
            async with asyncio.timeout(max(budget - CAPTURE_RESERVE_SECONDS, 1.0)):
                for index, url in enumerate(media.urls):
                    key = asset_key(job.id, index, media.mime_type)
                    await self._download(job, url, key, media.mime_type)
                    keys.append(key)
        except TimeoutError:
            raise JobFailed(
                Failure.PROVIDER_TIMEOUT,
                f"{job.provider}: the result files could not be fetched in time",
            ) from None
        return Result(
            asset_url=self.asset_settings.url(keys[0]),
            mime_type=media.mime_type,
            usage=media.usage,
        )

    async def _download(self, job: Job, url: str, key: str, mime_type: str) -> None:
        """Stream the provider's file into the asset store as it arrives (never
        whole in memory); a download that fails stores nothing, and is tried again."""
        limit = self.settings.jobs.media_max_bytes
        timeout = self.settings.policy.timeouts
        last = ""
        for attempt in range(MEDIA_ATTEMPTS):
            if attempt:
                await asyncio.sleep(FETCH_BACKOFF.delay(attempt))
            try:
                async with self.providers.client.stream(
                    "GET",
                    url,
                    timeout=httpx.Timeout(timeout.read, connect=timeout.connect, pool=timeout.pool),
                ) as response:
                    if response.status_code >= 500 or response.status_code == 429:
                        last = f"answered {response.status_code}"
                        continue
                    if response.status_code != 200:
                        last = f"answered {response.status_code}"
                        break
                    await self.assets.put_stream(key, _bounded(response, limit), mime_type)
                    return
            except httpx.HTTPError as error:
                last = type(error).__name__
        raise JobFailed(
            Failure.PROVIDER_ERROR,
            f"{job.provider}: cannot fetch the result file ({last})",
        )


async def _bounded(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    """The response's body as it arrives; JobFailed past `limit` bytes."""
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise JobFailed(Failure.PROVIDER_ERROR, f"the result is over {limit} bytes")
        yield chunk
