"""Domain jobs as protobuf messages: what GetJob answers and what events carry."""

from __future__ import annotations

from klik.generation.v1 import generation_pb2
from services.generation.domain import Job, Status


def job_message(job: Job) -> generation_pb2.Job:
    message = generation_pb2.Job(
        id=job.id,
        user_id=job.user_id,
        kind=job.kind.value,
        status=job.status.value,
        prompt=job.prompt,
        provider=job.provider,
        model=job.model,
        cost_credits=job.cost_credits,
    )
    if job.status is Status.SUCCEEDED and job.result is not None:
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
            )
        )
    if job.status is Status.FAILED:
        message.error.CopyFrom(
            generation_pb2.JobError(code=job.error_code, message=job.error_message)
        )
    message.created_at.FromDatetime(job.created_at)
    message.updated_at.FromDatetime(job.updated_at)
    return message
