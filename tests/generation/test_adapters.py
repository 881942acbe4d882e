"""Each provider adapter against the real sandbox over real HTTP: the happy path of
every kind, the catalogue cache, and resuming a provider job by its id."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox import content
from services.generation.domain import Usage
from services.generation.providers.errors import ProviderError, ProviderTimeout
from services.generation.providers.registry import Providers
from services.generation.providers.values import (
    ImageRequest,
    TextRequest,
    Turn,
    VideoRequest,
)
from tests.generation.conftest import FakeClock, MakeProviders, SandboxServer
from tests.generation.media import mp4_duration_ms, read_png


def soon(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


async def test_text_returns_the_reply_and_its_usage(
    providers: Providers, sandbox: SandboxServer
) -> None:
    result = await providers.text("sandbox").complete(
        TextRequest(model="sandbox-text", prompt="Write a tagline for a bakery", max_tokens=200)
    )
    assert result.provider == "sandbox"
    assert result.model == "sandbox-text"
    assert result.text.startswith("Sandbox reply to “Write a tagline for a bakery”")
    assert result.finish_reason == "stop"
    words = len(result.text.split())
    assert result.usage == Usage(prompt_tokens=6, completion_tokens=words, total_tokens=6 + words)
    assert result.mime_type == "text/plain"
    assert await sandbox.count("/v1/chat/completions") == 1


async def test_chat_sends_the_system_prompt_and_history(providers: Providers) -> None:
    request = TextRequest(
        model="sandbox-text",
        prompt="And in French?",  # 3 words
        system_prompt="You translate.",  # 2
        history=(Turn("user", "Say hello"), Turn("assistant", "Hello")),  # 2 + 1
        max_tokens=8,
        temperature=0.2,
    )
    result = await providers.text("sandbox").complete(request)
    assert result.usage.prompt_tokens == 3 + 2 + 2 + 1
    assert (result.usage.completion_tokens, result.finish_reason) == (8, "length")
    assert len(result.text.split()) == 8
    # The reply is to the new turn, not to the history.
    assert "And in French?" in result.text


async def test_image_starts_then_completes_with_real_pngs(
    providers: Providers, sandbox: SandboxServer
) -> None:
    leonardo = providers.images("sandbox")
    started = await leonardo.start(
        ImageRequest(
            model="sandbox-image", prompt="a lighthouse", width=96, height=64, num_images=2
        )
    )
    assert started.provider == "sandbox" and started.job_id
    first = await leonardo.poll(started.job_id)
    assert (first.status, first.done) == ("PENDING", False)
    result = await leonardo.wait(started.job_id, deadline=soon())
    assert result.provider == "sandbox" and result.job_id == started.job_id
    assert result.mime_type == "image/png"
    assert result.usage == Usage(images=2)
    assert len(result.urls) == 2 and result.asset_url == result.urls[0]
    async with httpx.AsyncClient() as http:
        images = [read_png((await http.get(url)).content) for url in result.urls]
    assert [(i.width, i.height) for i in images] == [(96, 64), (96, 64)]
    assert images[0].pixels != images[1].pixels
    posts = await sandbox.requests("/api/rest/v1/generations")
    assert [r["method"] for r in posts].count("POST") == 1


async def test_video_uses_the_default_avatar_and_reports_its_duration(
    providers: Providers, sandbox: SandboxServer
) -> None:
    heygen = providers.videos("sandbox")
    script = "Welcome to klik, the place where your ideas become videos"
    started = await heygen.start(VideoRequest(model="sandbox-avatar", script=script))
    result = await heygen.wait(started.job_id, deadline=soon())
    assert result.provider == "sandbox"
    assert result.mime_type == "video/mp4"
    assert result.usage == Usage(video_seconds=content.video_seconds(script))
    assert result.usage.video_seconds == 10 / 2.5
    assert result.thumbnail_url
    async with httpx.AsyncClient() as http:
        video = await http.get(result.asset_url)
    assert video.headers["content-type"] == "video/mp4"
    assert mp4_duration_ms(video.content) == 4000
    # The first listed avatar and voice were asked for.
    body = await sandbox.requests("/v2/video/generate")
    assert len(body) == 1


async def test_video_with_an_unknown_avatar_is_refused_once(
    providers: Providers, sandbox: SandboxServer
) -> None:
    with pytest.raises(ProviderError) as error:
        await providers.videos("sandbox").start(
            VideoRequest(model="sandbox-avatar", script="hi", avatar_id="nobody", voice_id="x")
        )
    assert error.value.reason == "PROVIDER_ERROR"
    assert "refused the request (400)" in error.value.message and "nobody" in error.value.message
    assert await sandbox.count("/v2/video/generate") == 1, "a refusal is not retried"
    assert providers.circuit_state("sandbox") == "closed", "a 4xx says the provider is up"


async def test_listing_is_cached_until_its_ttl_and_survives_an_outage(
    providers: Providers, sandbox: SandboxServer, clock: FakeClock
) -> None:
    heygen = providers.videos("sandbox")
    listing = await heygen.listing()
    assert [a.id for a in listing.avatars] == ["sandbox-avatar-ada", "sandbox-avatar-ben"]
    assert listing.avatars[0].name == "Ada (sandbox)"
    assert listing.avatars[0].preview_url.endswith(".png")
    assert (listing.voices[0].id, listing.voices[0].language) == ("sandbox-voice-en-1", "English")
    assert await heygen.listing() == listing
    assert await sandbox.count("/v2/avatars") == 1, "served from the cache"

    clock.advance(61)
    assert await heygen.listing() == listing
    assert await sandbox.count("/v2/avatars") == 2, "refreshed after the TTL"

    await sandbox.fault("500", path="/v2/")
    clock.advance(61)
    assert await heygen.listing() == listing, "the stale copy, while the provider fails"
    assert await sandbox.count("/v2/avatars") == 2 + 3, "the refresh was tried (3 attempts)"


async def test_a_resumed_worker_polls_the_job_it_started(
    make_providers: MakeProviders, sandbox: SandboxServer
) -> None:
    """The job id is all a second process needs: it polls that job to completion
    and never starts another paid one."""
    first = make_providers()
    started = await first.videos("sandbox").start(
        VideoRequest(
            model="sandbox-avatar",
            script="One take only [[fault:polls=3]]",
            avatar_id="sandbox-avatar-ben",
            voice_id="sandbox-voice-en-2",
        )
    )
    await first.aclose()  # the first worker dies after storing the id

    second = make_providers()
    result = await second.videos("sandbox").wait(started.job_id, deadline=soon())
    assert result.job_id == started.job_id
    assert result.usage.video_seconds == content.video_seconds("One take only")
    assert await sandbox.count("/v2/video/generate") == 1
    assert await sandbox.count("/v1/video_status.get") == 3


async def test_a_failed_provider_job_fails_with_its_reason(providers: Providers) -> None:
    leonardo = providers.images("sandbox")
    started = await leonardo.start(
        ImageRequest(model="sandbox-image", prompt="forbidden [[fault:fail]]")
    )
    with pytest.raises(ProviderError) as error:
        await leonardo.wait(started.job_id, deadline=soon())
    assert (error.value.reason, error.value.provider) == ("PROVIDER_ERROR", "sandbox")
    assert "the generation failed" in error.value.message

    heygen = providers.videos("sandbox")
    video = await heygen.start(VideoRequest(model="sandbox-avatar", script="no [[fault:fail]]"))
    with pytest.raises(ProviderError) as video_error:
        await heygen.wait(video.job_id, deadline=soon())
    assert "rendering failed" in video_error.value.message


async def test_a_job_that_never_finishes_times_out_at_its_deadline(
    providers: Providers, sandbox: SandboxServer
) -> None:
    leonardo = providers.images("sandbox")
    started = await leonardo.start(ImageRequest(model="sandbox-image", prompt="[[fault:stuck]]"))
    began = time.monotonic()
    with pytest.raises(ProviderTimeout) as error:
        await leonardo.wait(started.job_id, deadline=began + 0.4)
    assert error.value.reason == "PROVIDER_TIMEOUT"
    assert "still PENDING at its deadline" in error.value.message
    assert time.monotonic() - began < 2.0
    polls = await sandbox.count(f"/api/rest/v1/generations/{started.job_id}")
    assert polls >= 3, "it kept polling until the deadline"


async def test_an_init_image_is_uploaded_then_drawn_on_or_animated(
    providers: Providers, sandbox: SandboxServer
) -> None:
    leonardo = providers.images("sandbox")
    plain = await leonardo.wait(
        (await leonardo.start(ImageRequest(model="sandbox-image", prompt="a boat"))).job_id,
        deadline=soon(),
    )
    async with httpx.AsyncClient() as http:
        picture = (await http.get(plain.urls[0])).content
    image_id = await leonardo.upload_init_image(picture, "image/png")
    assert sandbox.state.init_images[image_id] == picture, "the bytes reached the bucket"

    redrawn = await leonardo.wait(
        (
            await leonardo.start(
                ImageRequest(
                    model="sandbox-image",
                    prompt="a boat",
                    init_image_id=image_id,
                    init_strength=0.3,
                )
            )
        ).job_id,
        deadline=soon(),
    )
    assert redrawn.urls != plain.urls, "the init image changes the result"

    clip = await leonardo.wait(
        (await leonardo.start_motion(image_id)).job_id, deadline=soon(), motion=True
    )
    assert clip.mime_type == "video/mp4" and clip.usage == Usage(video_seconds=4.0)
    async with httpx.AsyncClient() as http:
        assert mp4_duration_ms((await http.get(clip.urls[0])).content) == 4000
    with pytest.raises(ProviderError):
        await leonardo.upload_init_image(b"GIF89a", "image/gif")
    with pytest.raises(ProviderError):  # an id the bucket never received
        await leonardo.start(ImageRequest(model="sandbox-image", prompt="x", init_image_id="nope"))
