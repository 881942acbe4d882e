"""IMAGE on Leonardo.ai's REST API v1: create a generation, then poll it.

    POST {base}/generations  {prompt, modelId, width?, height?, num_images, negative_prompt?}
      -> {sdGenerationJob: {generationId, apiCreditCost?}}
    GET  {base}/generations/{generationId}
      -> {generations_by_pk: {id, status: PENDING|COMPLETE|FAILED,
          generated_images: [{id, url, nsfw}], ...}}

Authorization is `Bearer <key>`. The image URLs are Leonardo's CDN, and expire:
store the images before they do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from services.generation.catalogue import Endpoint
from services.generation.domain import Usage
from services.generation.providers.backoff import PollSchedule
from services.generation.providers.errors import Malformed, ProviderError
from services.generation.providers.http import ProviderHttp
from services.generation.providers.polling import wait_until_done
from services.generation.providers.values import ImageRequest, MediaResult, Progress, Started


class Leonardo:
    def __init__(
        self,
        http: ProviderHttp,
        endpoint: Endpoint,
        schedule: PollSchedule,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.provider = http.provider
        self.base = endpoint.base_url.rstrip("/")
        self.schedule = schedule
        self._sleep = sleep
        self.headers = {"accept": "application/json"}
        if endpoint.api_key:
            self.headers["authorization"] = f"Bearer {endpoint.api_key}"

    async def start(self, request: ImageRequest, *, deadline: float | None = None) -> Started:
        """Start the generation (Leonardo charges for it); return its id."""
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "modelId": request.model,
            "num_images": max(request.num_images, 1),
        }
        if request.width:
            body["width"] = request.width
        if request.height:
            body["height"] = request.height
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        job_id = await self.http.call(
            "POST",
            self.base + "/generations",
            json=body,
            headers=self.headers,
            parse=_generation_id,
            repeatable=False,
            deadline=deadline,
        )
        return Started(self.provider, job_id)

    async def poll(self, job_id: str, *, deadline: float | None = None) -> Progress:
        """One look at the generation. ProviderError when Leonardo reports it failed."""
        generation = await self.http.call(
            "GET",
            f"{self.base}/generations/{quote(job_id, safe='')}",
            headers=self.headers,
            parse=_generation,
            repeatable=True,
            deadline=deadline,
        )
        status = generation["status"]
        if status == "FAILED":
            raise ProviderError(self.provider, f"{self.provider}: the generation failed")
        if status != "COMPLETE":
            return Progress(status)
        urls = tuple(image["url"] for image in generation["generated_images"])
        return Progress(
            status,
            MediaResult(
                provider=self.provider,
                job_id=job_id,
                urls=urls,
                mime_type=_mime_type(urls[0]),
                usage=Usage(images=len(urls)),
            ),
        )

    async def wait(
        self, job_id: str, *, deadline: float, wake: asyncio.Event | None = None
    ) -> MediaResult:
        """Poll with backoff until COMPLETE (or FAILED), up to `deadline`."""
        return await wait_until_done(
            lambda: self.poll(job_id, deadline=deadline),
            provider=self.provider,
            what=f"image generation {job_id}",
            schedule=self.schedule,
            deadline=deadline,
            sleep=self._sleep,
            wake=wake,
        )


def _generation_id(data: Any) -> str:
    job_id = data["sdGenerationJob"]["generationId"]
    if not isinstance(job_id, str) or not job_id:
        raise Malformed("sdGenerationJob.generationId is not an id")
    return job_id


def _generation(data: Any) -> dict[str, Any]:
    generation = data["generations_by_pk"]
    if not isinstance(generation, dict):
        # Leonardo answers `null` for an id it does not know.
        raise Malformed("generations_by_pk is not a generation")
    if generation.get("status") not in ("PENDING", "COMPLETE", "FAILED"):
        raise Malformed(f"unknown generation status {generation.get('status')!r}")
    images = generation.get("generated_images") or []
    if not isinstance(images, list) or not all(
        isinstance(i, dict) and isinstance(i.get("url"), str) and i["url"] for i in images
    ):
        raise Malformed("generated_images[].url missing")
    if generation["status"] == "COMPLETE" and not images:
        raise Malformed("a COMPLETE generation without images")
    return {**generation, "generated_images": images}


def _mime_type(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    if path.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if path.endswith(".webp"):
        return "image/webp"
    return "image/png"
