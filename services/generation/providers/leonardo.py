"""IMAGE (and image-to-image) and IMAGE_TO_VIDEO on Leonardo.ai's REST API v1:
create a generation, then poll it.

    POST {base}/generations  {prompt, modelId, width?, height?, num_images, negative_prompt?,
                              init_image_id?, init_strength?}
      -> {sdGenerationJob: {generationId, apiCreditCost?}}
    POST {base}/init-image  {extension}
      -> {uploadInitImage: {id, url, fields (JSON text)}}: POST the file to `url` as a
         multipart form with those fields (S3's presigned POST), then use `id`
    POST {base}/generations-motion-svd  {imageId, isInitImage, motionStrength}
      -> {motionSvdGenerationJob: {generationId}}: a four-second clip of the image
    GET  {base}/generations/{generationId}
      -> {generations_by_pk: {id, status: PENDING|COMPLETE|FAILED,
          generated_images: [{id, url, nsfw}], ...}}
    GET  {base}/me
      -> {user_details: [{user: {id, username}, ...}]}
    GET  {base}/generations/user/{userId}?offset=&limit=
      -> {generations: [{id, status, prompt, modelId, imageWidth, imageHeight,
          motion?, createdAt, ...}]}   (the account's generations, newest first)

Authorization is `Bearer <key>`. The image URLs are Leonardo's CDN, and expire:
store the images before they do.

Leonardo keeps no client reference on a generation: a start whose answer was lost
(the worker died while it was in flight) is found again (`find`) among the
account's generations created since the start was asked for, by what it was asked
for (prompt, model, size; for a motion clip, that it is one)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from services.generation.catalogue import Endpoint
from services.generation.domain import Usage
from services.generation.providers.backoff import PollSchedule
from services.generation.providers.errors import Malformed, ProviderError
from services.generation.providers.http import ProviderHttp
from services.generation.providers.polling import wait_until_done
from services.generation.providers.values import (
    START_LOOKUP_PAGES,
    START_LOOKUP_SKEW_SECONDS,
    ImageRequest,
    MediaResult,
    Progress,
    Started,
)

# Generations per page of the account's list.
LIST_PAGE = 50


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
        self._user_id = ""  # the account's (GET /me), once asked

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
        if request.init_image_id:
            body["init_image_id"] = request.init_image_id
            body["init_strength"] = request.init_strength
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

    async def upload_init_image(
        self, data: bytes, mime_type: str, *, deadline: float | None = None
    ) -> str:
        """Upload an image to start from (image-to-image, motion); its init image id.
        Nothing is charged for it, so it is safe to repeat."""
        extension = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(mime_type)
        if extension is None:
            raise ProviderError(self.provider, f"{self.provider} takes no {mime_type} init image")
        slot = await self.http.call(
            "POST",
            self.base + "/init-image",
            json={"extension": extension},
            headers=self.headers,
            parse=_upload_slot,
            repeatable=True,
            deadline=deadline,
        )
        try:
            reply = await self.http.client.post(
                slot["url"],
                data=slot["fields"],
                files={"file": (f"init.{extension}", data, mime_type)},
                timeout=self.http.timeouts.read,
            )
        except httpx.HTTPError as error:
            raise ProviderError(
                self.provider, f"{self.provider}: the init image upload failed ({error})"
            ) from None
        if reply.status_code not in (200, 201, 204):
            raise ProviderError(
                self.provider,
                f"{self.provider}: the init image upload answered {reply.status_code}",
            )
        return str(slot["id"])

    async def start_motion(
        self, image_id: str, *, strength: int = 5, deadline: float | None = None
    ) -> Started:
        """Animate an uploaded init image into a short clip (Leonardo charges for it)."""
        job_id = await self.http.call(
            "POST",
            self.base + "/generations-motion-svd",
            json={"imageId": image_id, "isInitImage": True, "motionStrength": strength},
            headers=self.headers,
            parse=_motion_id,
            repeatable=False,
            deadline=deadline,
        )
        return Started(self.provider, job_id)

    async def find(
        self, request: ImageRequest | None, *, since: datetime, deadline: float | None = None
    ) -> list[str]:
        """The ids of the account's generations created since `since` that match
        `request` (prompt, model and size), or every motion clip when `request` is
        None, oldest first: how a start whose answer was lost is found. Reads the
        account's generations newest first, back to `since`."""
        if not self._user_id:
            self._user_id = await self.http.call(
                "GET",
                self.base + "/me",
                headers=self.headers,
                parse=_user_id,
                repeatable=True,
                deadline=deadline,
            )
        oldest = since.timestamp() - START_LOOKUP_SKEW_SECONDS
        found: list[str] = []
        for page in range(START_LOOKUP_PAGES):
            generations = await self.http.call(
                "GET",
                f"{self.base}/generations/user/{quote(self._user_id, safe='')}",
                params={"offset": str(page * LIST_PAGE), "limit": str(LIST_PAGE)},
                headers=self.headers,
                parse=_generations,
                repeatable=True,
                deadline=deadline,
            )
            for generation in generations:
                if generation["created"] >= oldest and _matches(generation, request):
                    found.append(generation["id"])
            if len(generations) < LIST_PAGE or generations[-1]["created"] < oldest:
                break
        return found[::-1]

    async def poll(
        self, job_id: str, *, deadline: float | None = None, motion: bool = False
    ) -> Progress:
        """One look at the generation. ProviderError when Leonardo reports it failed.
        `motion`: the result is the clip (`motionMP4URL`), not the still."""
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
        images = generation["generated_images"]
        if motion:
            clip = images[0].get("motionMP4URL")
            if not isinstance(clip, str) or not clip:
                raise Malformed("a COMPLETE motion generation without motionMP4URL")
            usage = Usage(video_seconds=MOTION_SECONDS)
            return Progress(status, MediaResult(self.provider, job_id, (clip,), "video/mp4", usage))
        urls = tuple(image["url"] for image in images)
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
        self,
        job_id: str,
        *,
        deadline: float,
        wake: asyncio.Event | None = None,
        motion: bool = False,
    ) -> MediaResult:
        """Poll with backoff until COMPLETE (or FAILED), up to `deadline`."""
        return await wait_until_done(
            lambda: self.poll(job_id, deadline=deadline, motion=motion),
            provider=self.provider,
            what=f"image generation {job_id}",
            schedule=self.schedule,
            deadline=deadline,
            sleep=self._sleep,
            wake=wake,
        )


# A Motion (SVD) clip's length: Leonardo does not report it.
MOTION_SECONDS = 4.0


def _upload_slot(data: Any) -> dict[str, Any]:
    slot = data["uploadInitImage"]
    fields = json.loads(slot["fields"])
    if not isinstance(slot.get("id"), str) or not isinstance(slot.get("url"), str):
        raise Malformed("uploadInitImage has no id or url")
    if not isinstance(fields, dict):
        raise Malformed("uploadInitImage.fields is not a JSON object")
    return {"id": slot["id"], "url": slot["url"], "fields": fields}


def _motion_id(data: Any) -> str:
    job_id = data["motionSvdGenerationJob"]["generationId"]
    if not isinstance(job_id, str) or not job_id:
        raise Malformed("motionSvdGenerationJob.generationId is not an id")
    return job_id


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


def _user_id(data: Any) -> str:
    user_id = data["user_details"][0]["user"]["id"]
    if not isinstance(user_id, str) or not user_id:
        raise Malformed("user_details[0].user.id is not an id")
    return user_id


def _generations(data: Any) -> list[dict[str, Any]]:
    listed = data["generations"]
    if not isinstance(listed, list):
        raise Malformed("generations is not a list")
    generations = []
    for generation in listed:
        if not isinstance(generation, dict) or not isinstance(generation.get("id"), str):
            raise Malformed("generations[].id missing")
        created = str(generation.get("createdAt") or "")
        try:
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            when = parsedate_to_datetime(created)  # ValueError: malformed
        if when.tzinfo is None:  # Leonardo's ISO times are UTC
            when = when.replace(tzinfo=UTC)
        generations.append({**generation, "created": when.timestamp()})
    return generations


def _matches(generation: dict[str, Any], request: ImageRequest | None) -> bool:
    if request is None:
        return bool(generation.get("motion"))
    return (
        not generation.get("motion")
        and generation.get("prompt") == request.prompt
        and generation.get("modelId") == request.model
        and (not request.width or generation.get("imageWidth") == request.width)
        and (not request.height or generation.get("imageHeight") == request.height)
    )


def _mime_type(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    if path.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    if path.endswith(".webp"):
        return "image/webp"
    return "image/png"
