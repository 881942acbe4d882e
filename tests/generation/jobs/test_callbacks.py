"""Provider callbacks finish media jobs sooner (issue 13): HeyGen's signed webhook
and Leonardo's keyed one, heard by any replica, wake the poll of their job on the
replica running it; polling stays the safety net and the source of truth. The
polls here are 30 s apart, so only a callback can explain a job done in seconds."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from typing import Any

import grpc
from google.api import httpbody_pb2

from klik.generation.v1 import generation_pb2
from services.generation.providers.backoff import PollSchedule
from tests.generation.conftest import POLICY
from tests.generation.jobs.conftest import MakeJobsStack
from tests.helpers import wait_for
from tests.tokens import Metadata
from tests.wallet.support import failure

SECRET = "heygen-endpoint-secret"
KEY = "leonardo-callback-key"
SLOW_POLLS = dataclasses.replace(
    POLICY,
    polling=PollSchedule(initial_seconds=30.0, factor=1.0, max_seconds=30.0),
    heygen_webhook_secret=SECRET,
    leonardo_webhook_key=KEY,
)


def body(data: dict[str, Any]) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps(data).encode())


def heygen(video_id: str, secret: str = SECRET) -> tuple[httpbody_pb2.HttpBody, Metadata]:
    sent = body({"event_type": "avatar_video.success", "event_data": {"video_id": video_id}})
    signature = hmac.new(secret.encode(), sent.data, hashlib.sha256).hexdigest()
    return sent, (("signature", signature),)


async def test_a_heygen_callback_to_another_replica_finishes_the_video_at_once(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(replicas=1, deadline=60.0, policy=SLOW_POLLS)
    user_id, who = await stack.user()
    job = await stack.create(who, kind="AVATAR_VIDEO", prompt="hello there [[fault:render=200]]")
    video_id = await stack.column(job.id, "provider_job_id")
    other = await stack.start(workers=0)  # serves the API only: the callback lands here
    assert other is stack.replicas[1]
    sent, signed = heygen(video_id)

    async def rendered() -> bool:  # the sandbox's video is done after 200 ms
        await stack.stub(1).HeyGenWebhook(
            generation_pb2.HeyGenWebhookRequest(body=sent), metadata=signed, timeout=5
        )
        return (await stack.get(who, job.id)).status == "SUCCEEDED"

    await wait_for(rendered, 10, interval=0.3, message="the callback finished the job")
    done = await stack.get(who, job.id)
    assert done.result.asset_url
    await stack.settled(user_id, 100 - done.cost_credits)


async def test_a_leonardo_callback_finishes_the_image_at_once(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(replicas=1, deadline=60.0, policy=SLOW_POLLS)
    _, who = await stack.user()
    job = await stack.create(who, kind="IMAGE", prompt="a cat [[fault:render=200]]")
    generation_id = await stack.column(job.id, "provider_job_id")
    sent = body({"type": "image_generation.complete", "data": {"object": {"id": generation_id}}})

    async def rendered() -> bool:
        await stack.stub().LeonardoWebhook(
            generation_pb2.LeonardoWebhookRequest(body=sent),
            metadata=(("authorization", f"Bearer {KEY}"),),
            timeout=5,
        )
        return (await stack.get(who, job.id)).status == "SUCCEEDED"

    await wait_for(rendered, 10, interval=0.3, message="the callback finished the job")


async def test_forged_malformed_and_unconfigured_callbacks_are_refused(
    make_jobs_stack: MakeJobsStack,
) -> None:
    stack = await make_jobs_stack(replicas=1, policy=SLOW_POLLS)
    stub = stack.stub()
    sent, _ = heygen("v-1")
    _, forged = heygen("v-1", secret="not the secret")
    for metadata in (forged, ()):
        refused = await failure(
            stub.HeyGenWebhook(generation_pb2.HeyGenWebhookRequest(body=sent), metadata=metadata)
        )
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_SIGNATURE",
        )
    refused = await failure(
        stub.LeonardoWebhook(
            generation_pb2.LeonardoWebhookRequest(body=body({"type": "x"})),
            metadata=(("authorization", "Bearer wrong"),),
        )
    )
    assert refused.reason == "INVALID_SIGNATURE"
    garbage = httpbody_pb2.HttpBody(data=b"not json")
    signature = hmac.new(SECRET.encode(), garbage.data, hashlib.sha256).hexdigest()
    refused = await failure(
        stub.HeyGenWebhook(
            generation_pb2.HeyGenWebhookRequest(body=garbage),
            metadata=(("signature", signature),),
        )
    )
    assert refused.reason == "MALFORMED_EVENT"
    # Another event type, properly signed: acknowledged, nothing happens.
    other = body({"event_type": "video_translate.success", "event_data": {}})
    signature = hmac.new(SECRET.encode(), other.data, hashlib.sha256).hexdigest()
    await stub.HeyGenWebhook(
        generation_pb2.HeyGenWebhookRequest(body=other), metadata=(("signature", signature),)
    )
    unconfigured = await make_jobs_stack(replicas=1)
    refused = await failure(
        unconfigured.stub().HeyGenWebhook(
            generation_pb2.HeyGenWebhookRequest(body=sent), metadata=heygen("v-1")[1]
        )
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "WEBHOOK_NOT_CONFIGURED",
    )
