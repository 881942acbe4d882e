"""A job's life through the real services: each kind succeeds and is charged exactly
its price; failures of every sort release the hold; cancellation; the events."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from kit.assets import open_asset_store
from klik.generation.v1 import generation_pb2
from services.generation.catalogue import SANDBOX_MODELS
from services.generation.domain import Kind, Usage
from services.generation.pricing import Prices
from tests.generation.jobs.conftest import JobsStack
from tests.generation.media import read_png
from tests.wallet.support import failure

PRICES = Prices()
MODELS = {kind: next(m for m in SANDBOX_MODELS if kind in m.kinds) for kind in Kind}


def actual(job: generation_pb2.Job) -> int:
    u = job.result.usage
    usage = Usage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.total_tokens,
        video_seconds=u.video_seconds,
        images=u.images,
    )
    kind = Kind(job.kind)
    return PRICES.actual(kind, MODELS[kind], usage)


@pytest.mark.parametrize(
    ("kind", "options", "mime"),
    [
        ("TEXT", {}, "text/plain"),
        ("CHAT", {"system_prompt": "be brief"}, "text/plain"),
        ("IMAGE", {"width": 64, "height": 64, "num_images": 2}, "image/png"),
        ("AVATAR_VIDEO", {"avatar_id": "sandbox-avatar-ben"}, "video/mp4"),
    ],
)
async def test_each_kind_succeeds_and_is_charged_exactly_its_price(
    stack: JobsStack, kind: str, options: dict[str, object], mime: str
) -> None:
    user_id, who = await stack.user()
    history = [generation_pb2.ChatTurn(role="user", content="hi")] if kind == "CHAT" else []
    job = await stack.create(
        who,
        kind=kind,
        prompt="a lighthouse at dawn, seen from the sea on a calm day",
        options=generation_pb2.JobOptions(**options),  # type: ignore[arg-type]
        history=history,
        idempotency_key="k1",
    )
    # RUNNING when a claim loop was idle and started it as it was queued
    # (test_direct_start.py); its events say QUEUED, then RUNNING, either way.
    assert job.status in ("QUEUED", "RUNNING") and job.provider == "sandbox"
    assert job.model == MODELS[Kind(kind)].id
    estimate = job.cost_credits
    assert estimate > 0

    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED", done.error
    price = actual(done)
    assert done.cost_credits == price <= estimate
    assert done.result.mime_type == mime
    await stack.settled(user_id, 100 - price)
    assert await stack.charges(user_id) == [-price]

    if kind in ("TEXT", "CHAT"):
        assert done.result.text and not done.result.asset_url
        assert done.result.usage.total_tokens > 0
    else:
        assert done.result.asset_url.startswith(stack.assets.public_base_url + "/" + job.id)
        key = done.result.asset_url.removeprefix(stack.assets.public_base_url + "/")
        store = open_asset_store(stack.assets)
        data = b"".join([chunk async for chunk in store.read(key)])
        if kind == "IMAGE":
            assert done.result.usage.images == 2 and price == 10
            assert (read_png(data).width, read_png(data).height) == (64, 64)
            assert await store.stat(f"{job.id}/1.png") is not None, "every image is stored"
        else:
            assert data[4:8] == b"ftyp" and done.result.usage.video_seconds > 0

    events = await stack.events(job.id, 3)
    assert [(e.previous_status, e.job.status) for e in events] == [
        ("", "QUEUED"),
        ("QUEUED", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert events[-1].job.cost_credits == price
    assert events[-1].job.result.mime_type == mime


def jobs_metric(kind: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "klik_generation_jobs_total", {"kind": kind, "status": status}
    )
    return value or 0.0


async def test_429_twice_then_success_charges_once(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    succeeded_before = jobs_metric("TEXT", "SUCCEEDED")
    job = await stack.create(
        who, kind="TEXT", prompt="count to three [[fault:429x2,retry-after=0.1]]"
    )
    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED"
    statuses = [r["status"] for r in await stack.sandbox.requests("/v1/chat/completions")]
    assert statuses == [429, 429, 200]
    await stack.settled(user_id, 100 - done.cost_credits)
    assert await stack.charges(user_id) == [-done.cost_credits]
    assert jobs_metric("TEXT", "SUCCEEDED") == succeeded_before + 1


async def test_a_permanent_5xx_fails_the_job_and_releases_the_hold(stack: JobsStack) -> None:
    user_id, who = await stack.user()
    job = await stack.create(who, kind="IMAGE", prompt="a kite [[fault:500]]")
    assert job.cost_credits == 5, "the estimate is held"
    done = await stack.finished(who, job.id)
    assert done.status == "FAILED"
    assert done.error.code == "PROVIDER_ERROR" and "500" in done.error.message
    assert done.cost_credits == 0 and not done.result.asset_url
    await stack.settled(user_id, 100)
    assert await stack.charges(user_id) == []
    # A start that may have created a paid job is not retried after a 500.
    assert await stack.sandbox.count("/api/rest/v1/generations") == 1
    events = await stack.events(job.id, 3)
    assert events[-1].job.status == "FAILED" and events[-1].job.error.code == "PROVIDER_ERROR"


@pytest.mark.parametrize(
    ("kind", "prompt"),
    [("IMAGE", "a kite that never lands [[fault:stuck]]"), ("TEXT", "silence [[fault:hang]]")],
)
async def test_a_provider_that_hangs_fails_the_job_by_its_deadline(
    stack: JobsStack, kind: str, prompt: str
) -> None:
    user_id, who = await stack.user()
    job = await stack.create(who, kind=kind, prompt=prompt)
    done = await stack.finished(who, job.id, within=15)
    assert done.status == "FAILED"
    assert done.error.code == "PROVIDER_TIMEOUT"
    await stack.settled(user_id, 100)
    assert await stack.charges(user_id) == []


async def test_cancel_while_running_releases_the_hold_and_discards_the_result(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    job = await stack.create(who, kind="IMAGE", prompt="slow [[fault:polls=60]]")
    await stack.status(who, job.id, "RUNNING")
    cancelled = (
        await stack.stub().CancelJob(
            generation_pb2.CancelJobRequest(job_id=job.id), metadata=who, timeout=5
        )
    ).job
    assert cancelled.status == "CANCELLED" and cancelled.cost_credits == 0
    await stack.settled(user_id, 100)
    # Cancelling again returns it unchanged.
    again = (
        await stack.stub().CancelJob(
            generation_pb2.CancelJobRequest(job_id=job.id), metadata=who, timeout=5
        )
    ).job
    assert again == cancelled
    events = await stack.events(job.id, 3)
    assert [(e.previous_status, e.job.status) for e in events] == [
        ("", "QUEUED"),
        ("QUEUED", "RUNNING"),
        ("RUNNING", "CANCELLED"),
    ]
    # The provider job would have completed by now; the job stays cancelled, uncharged.
    assert (await stack.get(who, job.id)).status == "CANCELLED"
    assert await stack.charges(user_id) == []


async def test_cancel_refuses_finished_jobs_and_hides_other_users_jobs(
    stack: JobsStack,
) -> None:
    _, who = await stack.user()
    _, stranger = await stack.user()
    job = await stack.create(who, kind="TEXT", prompt="hello")
    await stack.finished(who, job.id)
    refused = await failure(
        stack.stub().CancelJob(generation_pb2.CancelJobRequest(job_id=job.id), metadata=who)
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_ALREADY_FINISHED",
    )
    for call in (
        stack.stub().GetJob(generation_pb2.GetJobRequest(job_id=job.id), metadata=stranger),
        stack.stub().CancelJob(generation_pb2.CancelJobRequest(job_id=job.id), metadata=stranger),
        stack.stub().GetJob(generation_pb2.GetJobRequest(job_id="nope"), metadata=who),
    ):
        hidden = await failure(call)
        assert (hidden.code, hidden.reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")


async def test_a_vertical_1080p_video_is_rendered_so_and_priced_at_the_hd_rate(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    script = "hello from a phone screen"
    sd = await stack.stub().EstimateJob(
        generation_pb2.EstimateJobRequest(kind="AVATAR_VIDEO", prompt=script), metadata=who
    )
    options = generation_pb2.JobOptions(aspect_ratio="9:16", quality="1080p")
    hd = await stack.stub().EstimateJob(
        generation_pb2.EstimateJobRequest(kind="AVATAR_VIDEO", prompt=script, options=options),
        metadata=who,
    )
    assert hd.estimate_credits == 2 * sd.estimate_credits
    job = await stack.create(who, kind="AVATAR_VIDEO", prompt=script, options=options)
    done = await stack.finished(who, job.id)
    assert done.status == "SUCCEEDED", done.error
    rendered = [j for j in stack.sandbox.state.jobs._jobs.values() if j.kind == "video"]
    assert [(j.width, j.height) for j in rendered] == [(1080, 1920)]
    usage = Usage(video_seconds=done.result.usage.video_seconds)
    assert done.cost_credits == PRICES.actual(
        Kind.AVATAR_VIDEO, MODELS[Kind.AVATAR_VIDEO], usage, hd=True
    )
    assert done.cost_credits == 2 * actual(done)
    await stack.settled(user_id, 100 - done.cost_credits)
    for bad in (
        generation_pb2.JobOptions(aspect_ratio="4:3"),
        generation_pb2.JobOptions(quality="8k"),
    ):
        refused = await failure(
            stack.stub().CreateJob(
                generation_pb2.CreateJobRequest(kind="AVATAR_VIDEO", prompt=script, options=bad),
                metadata=who,
            )
        )
        assert refused.reason == "INVALID_OPTIONS"


async def test_an_image_of_the_callers_is_redrawn_and_animated_into_a_clip(
    stack: JobsStack,
) -> None:
    user_id, who = await stack.user()
    picture = await stack.create(
        who,
        kind="IMAGE",
        prompt="a red kite",
        options=generation_pb2.JobOptions(width=64, height=64, num_images=2),
    )
    picture = await stack.finished(who, picture.id)
    assert picture.status == "SUCCEEDED"
    store = open_asset_store(stack.assets)
    second = b"".join([c async for c in store.read(f"{picture.id}/1.png")])

    redrawn = await stack.create(
        who,
        kind="IMAGE",
        prompt="the kite at night",
        options=generation_pb2.JobOptions(
            width=64, height=64, input_job_id=picture.id, input_index=1, init_strength=0.3
        ),
    )
    clip = await stack.create(
        who,
        kind="IMAGE_TO_VIDEO",
        prompt="let it fly",
        options=generation_pb2.JobOptions(input_job_id=picture.id, motion_strength=7),
    )
    assert clip.cost_credits == PRICES.motion_clip
    redrawn, clip = await stack.finished(who, redrawn.id), await stack.finished(who, clip.id)
    assert (redrawn.status, clip.status) == ("SUCCEEDED", "SUCCEEDED"), (redrawn.error, clip.error)
    assert clip.result.mime_type == "video/mp4" and clip.cost_credits == PRICES.motion_clip
    # The provider got the very bytes of the chosen image, once per job.
    assert second in stack.sandbox.state.init_images.values()
    assert len(stack.sandbox.state.init_images) == 2
    video = b"".join([c async for c in store.read(f"{clip.id}/0.mp4")])
    assert video[4:8] == b"ftyp"
    await stack.settled(
        user_id, 100 - picture.cost_credits - redrawn.cost_credits - clip.cost_credits
    )

    _, other = await stack.user()
    for who_asks, options in (
        (other, generation_pb2.JobOptions(input_job_id=picture.id)),  # not theirs
        (who, generation_pb2.JobOptions(input_job_id=clip.id)),  # not an image
        (who, generation_pb2.JobOptions(input_job_id=picture.id, input_index=2)),  # no such
        (who, generation_pb2.JobOptions()),  # no input at all
    ):
        refused = await failure(
            stack.stub().CreateJob(
                generation_pb2.CreateJobRequest(kind="IMAGE_TO_VIDEO", prompt="x", options=options),
                metadata=who_asks,
            )
        )
        assert refused.reason == "INVALID_OPTIONS"
    await store.close()
