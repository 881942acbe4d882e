"""Starting generation jobs on the user's behalf: GenerationService.CreateJob over
gRPC with the caller's own access token (so the job is theirs and charged to them),
and its errors turned back into domain errors the caller sees unchanged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from kit.errors import DomainError, Unavailable, peer_refusal
from klik.generation.v1 import generation_pb2, generation_pb2_grpc

# How long the content RPC waits for CreateJob (it only places a hold and queues).
CREATE_TIMEOUT_SECONDS = 10.0

log = logging.getLogger(__name__)


class OutcomeUnknown(Unavailable):
    """CreateJob failed in a way that does not say whether the job exists (timeout,
    lost connection, internal error): the caller may retry with the same key."""


def _domain_error(error: grpc.aio.AioRpcError) -> DomainError:
    # A refusal with a reason of its own is definite: generation decided and no job
    # exists. Anything else (no refusal at all, or a bare UNAVAILABLE) may have
    # happened after the job was created.
    refusal = peer_refusal(error)
    if refusal is None or (
        error.code() is grpc.StatusCode.UNAVAILABLE and refusal.reason == "UNAVAILABLE"
    ):
        return OutcomeUnknown("GENERATION_UNAVAILABLE", "the generation service did not answer")
    return refusal


class Generation:
    """The calls content makes to the generation service."""

    def __init__(self, channel: Callable[[], grpc.aio.Channel]) -> None:
        self._channel = channel

    def _stub(self) -> generation_pb2_grpc.GenerationServiceStub:
        return generation_pb2_grpc.GenerationServiceStub(self._channel())

    async def create_job(
        self, token: str, request: generation_pb2.CreateJobRequest
    ) -> generation_pb2.Job:
        try:
            reply: generation_pb2.CreateJobResponse = await self._stub().CreateJob(
                request,
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=CREATE_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as error:
            raise _domain_error(error) from None
        return reply.job

    async def watch_job(
        self, token: str, job_id: str
    ) -> AsyncIterator[generation_pb2.WatchJobResponse]:
        """The job's stream (WatchJob) as the user sees it. A refusal before the
        first event is the user's own (e.g. JOB_NOT_FOUND); a failure later ends the
        stream with GENERATION_UNAVAILABLE (the job goes on: watch it again)."""
        call = self._stub().WatchJob(
            generation_pb2.WatchJobRequest(job_id=job_id),
            metadata=(("authorization", f"Bearer {token}"),),
        )
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as error:
            refusal = peer_refusal(error)
            if refusal is not None and refusal.reason != "UNAVAILABLE":
                raise refusal from None
            raise Unavailable(
                "GENERATION_UNAVAILABLE", "the reply's stream broke; watch its job to resume"
            ) from None
        finally:
            call.cancel()

    async def cancel_job(self, token: str, job_id: str) -> None:
        """Cancel a job content started but will not use (its hold is released). Best
        effort: on failure the job runs and is charged, which is logged."""
        try:
            await self._stub().CancelJob(
                generation_pb2.CancelJobRequest(job_id=job_id),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=CREATE_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as error:
            log.warning(
                "cannot cancel an unused job",
                extra={"job_id": job_id, "code": error.code().name},
            )

    async def chat_models(self, token: str) -> Sequence[str]:
        """Ids of every model that serves CHAT."""
        try:
            reply: generation_pb2.ListProvidersResponse = await self._stub().ListProviders(
                generation_pb2.ListProvidersRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
            )
        except grpc.aio.AioRpcError as error:
            raise _domain_error(error) from None
        return [
            model.id
            for provider in reply.providers
            for model in provider.models
            if "CHAT" in model.kinds
        ]
