"""gRPC servicers of the generation service: proto ⇄ domain (jobs as protobuf
messages: what GetJob answers and what events carry), and who may call what; the
rules are in jobs.py and domain.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from kit.callers import metadata_value
from kit.config import env_str
from kit.errors import DomainError, PermissionDenied
from kit.idempotency import message_fingerprint
from kit.paging import page_size
from kit.server import Resources
from kit.timestamps import timestamp
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from services.generation.catalogue import PREMIUM_ROLES, Provider
from services.generation.domain import Job, Kind, NewJob, Options, Status, Turn
from services.generation.providers import callbacks
from services.generation.providers.errors import ProviderError
from services.generation.providers.values import Listing
from services.generation.summary import JobsSummary
from services.generation.watch import Event, Watch

if TYPE_CHECKING:
    from services.generation.service import Runtime

log = logging.getLogger(__name__)

FINISHED = frozenset(status.value for status in Status if status.finished)


class GenerationApi(generation_pb2_grpc.GenerationServiceServicer):
    """klik.generation.v1.GenerationService."""

    def __init__(self, resources: Resources, runtime: Runtime) -> None:
        self.resources = resources
        self.settings = runtime.settings
        self.providers = runtime.providers
        self.jobs = runtime.jobs
        self.streams = runtime.streams
        policy = runtime.settings.policy
        self.webhook_secrets = (policy.heygen_webhook_secret, policy.leonardo_webhook_key)
        self._tasks: set[asyncio.Task[Any]] = set()
        # KLIK_REQUIRE_VERIFIED_EMAIL (default on): no paid work for an account whose
        # access token says its email is unverified (the `ev` claim, kit.callers).
        self.require_verified_email = env_str("KLIK_REQUIRE_VERIFIED_EMAIL", "1").lower() not in (
            "0",
            "false",
            "no",
            "off",
        )

    async def CreateJob(
        self, request: generation_pb2.CreateJobRequest, context: Any
    ) -> generation_pb2.CreateJobResponse:
        job = await self._create(request, context)
        return generation_pb2.CreateJobResponse(job=job_message(job))

    async def StreamJob(
        self, request: generation_pb2.StreamJobRequest, context: Any
    ) -> AsyncIterator[Event]:
        # The same fields under the same numbers: read it as the CreateJob it is, less
        # cancel_on_disconnect (so its fingerprint is CreateJob's for the same body).
        as_created = generation_pb2.CreateJobRequest.FromString(request.SerializeToString())
        as_created.DiscardUnknownFields()
        job = await self._create(as_created, context)
        events = self._watch(
            job.user_id,
            job.id,
            "",
            request.cancel_on_disconnect,
            created=job,
            response=generation_pb2.StreamJobResponse,
        )
        async for event in events:
            yield event

    async def _create(self, request: generation_pb2.CreateJobRequest, context: Any) -> Job:
        caller = await self.resources.callers.user(context)
        if self.require_verified_email and not caller.email_verified:
            raise PermissionDenied(
                "EMAIL_NOT_VERIFIED",
                "verify your email address first (the link in the mail, or "
                "POST /v1/auth/verify-email:resend), then refresh your access token",
            )
        premium = caller.role in PREMIUM_ROLES
        return await self.jobs.create(caller.user_id, new_job(request), premium=premium)

    async def EstimateJob(
        self, request: generation_pb2.EstimateJobRequest, context: Any
    ) -> generation_pb2.EstimateJobResponse:
        caller = await self.resources.callers.user(context)
        # The same fields under the same numbers: read it as the CreateJob it prices.
        as_created = generation_pb2.CreateJobRequest.FromString(request.SerializeToString())
        job = await self.jobs.estimate(
            caller.user_id, new_job(as_created), premium=caller.role in PREMIUM_ROLES
        )
        return generation_pb2.EstimateJobResponse(
            estimate_credits=job.estimate, provider=job.provider, model=job.model
        )

    async def GetJob(
        self, request: generation_pb2.GetJobRequest, context: Any
    ) -> generation_pb2.GetJobResponse:
        caller = await self.resources.callers.user(context)
        job = await self.jobs.get(caller.user_id, request.job_id)
        return generation_pb2.GetJobResponse(job=job_message(job))

    async def ListJobs(
        self, request: generation_pb2.ListJobsRequest, context: Any
    ) -> generation_pb2.ListJobsResponse:
        caller = await self.resources.callers.user(context)
        status = Status.parse_filter(request.status)
        jobs, next_token = await self.jobs.page(
            caller.user_id, status, request.page_token, page_size(request.page_size)
        )
        return generation_pb2.ListJobsResponse(
            jobs=[job_message(job) for job in jobs], next_page_token=next_token
        )

    async def CancelJob(
        self, request: generation_pb2.CancelJobRequest, context: Any
    ) -> generation_pb2.CancelJobResponse:
        caller = await self.resources.callers.user(context)
        job = await self.jobs.cancel(caller.user_id, request.job_id)
        return generation_pb2.CancelJobResponse(job=job_message(job))

    async def WatchJob(
        self, request: generation_pb2.WatchJobRequest, context: Any
    ) -> AsyncIterator[Event]:
        caller = await self.resources.callers.user(context)
        events = self._watch(
            caller.user_id, request.job_id, request.last_event_id, request.cancel_on_disconnect
        )
        async for event in events:
            yield event

    async def _watch(
        self,
        user_id: str,
        job_id: str,
        last_event_id: str,
        cancel_on_disconnect: bool,
        created: Job | None = None,
        response: type[Event] = generation_pb2.WatchJobResponse,
    ) -> AsyncIterator[Event]:
        watch = Watch(self.jobs, self.streams, job_message, user_id, job_id, response)
        finished = False
        try:
            async for event in watch.events(last_event_id, created):
                finished = event.job.status in FINISHED
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away (only that: a refusal such as INVALID_EVENT_ID
            # cancels nothing). The cancel must outlive the call that asked for it.
            if cancel_on_disconnect and not finished:
                self._background(self._cancel_quietly(user_id, job_id))
            raise

    async def _cancel_quietly(self, user_id: str, job_id: str) -> None:
        try:
            await self.jobs.cancel(user_id, job_id)
        except DomainError as error:  # it finished meanwhile: nothing to cancel
            log.info("no cancel on disconnect", extra={"job_id": job_id, "why": error.reason})

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def HeyGenWebhook(
        self, request: generation_pb2.HeyGenWebhookRequest, context: Any
    ) -> generation_pb2.HeyGenWebhookResponse:
        # Public: the signature over the exact body is the authentication.
        signature = metadata_value(context, "signature")
        video_id = callbacks.heygen_job(self.webhook_secrets[0], request.body.data, signature)
        await self._wake(video_id)
        return generation_pb2.HeyGenWebhookResponse()

    async def LeonardoWebhook(
        self, request: generation_pb2.LeonardoWebhookRequest, context: Any
    ) -> generation_pb2.LeonardoWebhookResponse:
        authorization = metadata_value(context, "authorization")
        found = callbacks.leonardo_job(self.webhook_secrets[1], request.body.data, authorization)
        await self._wake(found)
        return generation_pb2.LeonardoWebhookResponse()

    async def _wake(self, provider_job_id: str | None) -> None:
        """The poll of that job, here or on another replica, happens now."""
        if provider_job_id:
            self.providers.wakeups.wake(provider_job_id)
            await self.streams.wake(provider_job_id)

    async def GetPricing(
        self, request: generation_pb2.GetPricingRequest, context: Any
    ) -> generation_pb2.GetPricingResponse:
        # Public: prices are what anyone sees before signing up.
        return generation_pb2.GetPricingResponse(
            prices=[
                generation_pb2.Price(
                    kind=price.kind,
                    model=price.model,
                    unit=price.unit,
                    credits_per_unit=price.credits_per_unit,
                    minimum_credits=price.minimum_credits,
                )
                for price in self.settings.prices.price_list(self.settings.catalogue)
            ]
        )

    async def ListProviders(
        self, request: generation_pb2.ListProvidersRequest, context: Any
    ) -> generation_pb2.ListProvidersResponse:
        await self.resources.callers.user(context)
        catalogue = self.settings.catalogue
        return generation_pb2.ListProvidersResponse(
            providers=[await self._provider(provider) for provider in catalogue.providers],
            aliases=[
                generation_pb2.ModelAlias(
                    name=alias.name,
                    kinds=list(catalogue.alias_kinds(alias)),
                    models=list(alias.spelled),
                    credits_per_million_tokens=self.settings.prices.alias_rate(catalogue, alias),
                )
                for alias in catalogue.aliases
            ],
        )

    async def _provider(self, provider: Provider) -> generation_pb2.Provider:
        listing = Listing()
        if Kind.AVATAR_VIDEO in provider.kinds:
            try:
                listing = await self.providers.videos(provider.name).listing()
            except ProviderError as error:
                # The catalogue is still worth showing: the circuit state says why
                # the avatars are missing.
                log.warning(
                    "cannot list avatars and voices",
                    extra={"provider": provider.name, "error": error.message},
                )
        prices = self.settings.prices
        return generation_pb2.Provider(
            name=provider.name,
            kinds=list(provider.kinds),
            models=[
                generation_pb2.Model(
                    id=model.id,
                    kinds=list(model.kinds),
                    display_name=model.display_name,
                    credits_per_million_tokens=(
                        prices.tokens_rate(model) if any(k.is_text for k in model.kinds) else 0
                    ),
                    is_default=provider.is_default(model),
                    premium=model.premium,
                )
                for model in provider.models
            ],
            avatars=[
                generation_pb2.Avatar(id=a.id, name=a.name, preview_url=a.preview_url)
                for a in listing.avatars
            ],
            voices=[
                generation_pb2.Voice(id=v.id, name=v.name, language=v.language)
                for v in listing.voices
            ],
            # Read after the listing: it may just have opened or closed the circuit.
            circuit_state=self.providers.circuit_state(provider.name),
            sandbox=provider.sandbox,
        )

    # ---- job summaries ----

    async def GetGenerationSummary(
        self, request: generation_pb2.GetGenerationSummaryRequest, context: Any
    ) -> generation_pb2.GetGenerationSummaryResponse:
        await self.resources.callers.user(context, "admin")
        configured = tuple(provider.name for provider in self.settings.catalogue.providers)
        days, errors = await JobsSummary(self.resources.uow).summary(request.days, configured)
        return generation_pb2.GetGenerationSummaryResponse(
            days=[
                generation_pb2.GenerationSummaryDay(
                    date=day.day.isoformat(),
                    jobs=day.jobs,
                    by_status=_counts(day.by_status),
                    by_kind=_counts(day.by_kind),
                )
                for day in days
            ],
            providers=[
                generation_pb2.ProviderHealth(
                    provider=e.provider,
                    circuit_state=(
                        self.providers.circuit_state(e.provider)
                        if e.provider in self.providers.breakers
                        else ""
                    ),
                    jobs=e.jobs,
                    failed=e.failed,
                    error_rate=e.error_rate,
                )
                for e in errors
            ],
        )


def _counts(by_label: dict[str, int]) -> list[generation_pb2.JobCount]:
    return [generation_pb2.JobCount(label=label, jobs=n) for label, n in by_label.items()]


def job_message(job: Job) -> generation_pb2.Job:
    """The job as GetJob answers it and `generation.job.*` events carry it."""
    message = generation_pb2.Job(
        id=job.id,
        user_id=job.user_id,
        kind=job.kind.value,
        status=job.status.value,
        prompt=job.prompt,
        provider=job.provider,
        model=job.model,
        cost_credits=job.cost_credits,
        alias=job.alias,
    )
    # A TEXT/CHAT job that failed or was cancelled mid-stream keeps what it charged for.
    if job.result is not None and (job.status is Status.SUCCEEDED or job.kind.is_text):
        usage = job.result.usage
        message.result.CopyFrom(
            generation_pb2.JobResult(
                text=job.result.text,
                asset_url=job.result.asset_url,
                mime_type=job.result.mime_type,
                usage=generation_pb2.Usage(
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    total_tokens=usage.tokens if job.kind.is_text else usage.total_tokens,
                    video_seconds=usage.video_seconds,
                    images=usage.images,
                ),
                usage_estimated=job.result.usage_estimated,
            )
        )
    if job.status is Status.FAILED:
        message.error.CopyFrom(
            generation_pb2.JobError(code=job.error_code, message=job.error_message)
        )
    message.created_at.CopyFrom(timestamp(job.created_at))
    message.updated_at.CopyFrom(timestamp(job.updated_at))
    return message


def new_job(request: generation_pb2.CreateJobRequest) -> NewJob:
    """The request as the use case takes it, with the fingerprint that tells a
    replay (same body) from a reuse of its key (another body)."""
    fingerprint = message_fingerprint(request)
    o = request.options
    return NewJob(
        kind=request.kind,
        prompt=request.prompt,
        provider=request.provider,
        model=request.model,
        options=Options(
            width=o.width,
            height=o.height,
            num_images=o.num_images,
            avatar_id=o.avatar_id,
            voice_id=o.voice_id,
            max_tokens=o.max_tokens,
            temperature=o.temperature if o.HasField("temperature") else None,
            system_prompt=o.system_prompt,
            negative_prompt=o.negative_prompt,
            max_video_seconds=o.max_video_seconds,
            input_job_id=o.input_job_id,
            input_index=o.input_index,
            init_strength=o.init_strength if o.HasField("init_strength") else None,
            motion_strength=o.motion_strength,
            aspect_ratio=o.aspect_ratio,
            quality=o.quality,
            history=tuple(Turn(t.role, t.content) for t in request.history),
        ),
        idempotency_key=request.idempotency_key,
        fingerprint=fingerprint,
    )


def register(server: grpc.aio.Server, resources: Resources, runtime: Runtime) -> Sequence[str]:
    """Add the servicer, over the replica's runtime (service.py)."""
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(
        GenerationApi(resources, runtime), server
    )
    return (generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name,)
