"""AVATAR_VIDEO on HeyGen's API: create a video, then poll its status; list the
avatars and voices it offers (cached).

    POST {base}/v2/video/generate
         {video_inputs: [{character: {type: avatar, avatar_id, avatar_style},
                          voice: {type: text, input_text, voice_id}}],
          dimension: {width, height}}   (the aspect ratio and quality asked for)
      -> {error: null, data: {video_id}}
    GET  {base}/v1/video_status.get?video_id=...
      -> {code: 100, message, data: {id, status: pending|waiting|processing|completed|failed,
          video_url, thumbnail_url, duration, error}}
    GET  {base}/v1/video.list?limit=&token=
      -> {code: 100, data: {videos: [{video_id, video_title, status, created_at,
          callback_id?}], token}}   (newest first; `token` pages on)
    GET  {base}/v2/avatars
      -> {error, data: {avatars: [{avatar_id, avatar_name, preview_image_url}]}}
    GET  {base}/v2/voices
      -> {error, data: {voices: [{voice_id, name, language}]}}

Authorization is the `X-Api-Key` header. Video URLs expire: store the video first.

A video is started with our reference as its `title` and `callback_id`, so that a
start whose answer was lost (the worker died while it was in flight) is found again
in the video list (`find`) instead of being lost, or paid twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from services.generation.catalogue import Endpoint
from services.generation.domain import Usage
from services.generation.providers.backoff import PollSchedule
from services.generation.providers.cache import TtlCache
from services.generation.providers.errors import Malformed, ProviderError
from services.generation.providers.http import ProviderHttp
from services.generation.providers.polling import wait_until_done
from services.generation.providers.values import (
    START_LOOKUP_PAGES,
    START_LOOKUP_SKEW_SECONDS,
    Avatar,
    Listing,
    MediaResult,
    Progress,
    Started,
    VideoRequest,
    Voice,
)


class HeyGen:
    def __init__(
        self,
        http: ProviderHttp,
        endpoint: Endpoint,
        schedule: PollSchedule,
        *,
        listing_ttl_seconds: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.provider = http.provider
        self.base = endpoint.base_url.rstrip("/")
        self.schedule = schedule
        self._sleep = sleep
        self._listing: TtlCache[Listing] = TtlCache(listing_ttl_seconds, clock)
        self.headers = {"accept": "application/json"}
        if endpoint.api_key:
            self.headers["x-api-key"] = endpoint.api_key

    async def listing(self) -> Listing:
        """Avatars and voices, cached for `listing_ttl_seconds` (a failed refresh
        serves the last copy)."""
        return await self._listing.get(self._fetch_listing)

    async def start(self, request: VideoRequest, *, deadline: float | None = None) -> Started:
        """Start rendering the video (HeyGen charges for it); return its id. An empty
        avatar or voice is the first one HeyGen lists."""
        avatar_id, voice_id = request.avatar_id, request.voice_id
        if not avatar_id or not voice_id:
            listing = await self.listing()
            if not listing.avatars or not listing.voices:
                raise ProviderError(self.provider, f"{self.provider} lists no avatar or voice")
            avatar_id = avatar_id or listing.avatars[0].id
            voice_id = voice_id or listing.voices[0].id
        body: dict[str, Any] = {
            "video_inputs": [
                {
                    "character": {
                        "type": "avatar",
                        "avatar_id": avatar_id,
                        "avatar_style": "normal",
                    },
                    "voice": {"type": "text", "input_text": request.script, "voice_id": voice_id},
                }
            ],
            "dimension": {"width": request.size[0], "height": request.size[1]},
        }
        if request.reference:
            body["title"] = request.reference
            body["callback_id"] = request.reference
        video_id = await self.http.call(
            "POST",
            self.base + "/v2/video/generate",
            json=body,
            headers=self.headers,
            parse=lambda data: str(_data(data, self.provider)["video_id"]),
            repeatable=False,
            deadline=deadline,
        )
        if not video_id:
            raise ProviderError(self.provider, f"{self.provider} returned no video id")
        return Started(self.provider, video_id)

    async def find(
        self, reference: str, *, since: datetime, deadline: float | None = None
    ) -> list[str]:
        """The ids of the videos started with `reference` (as their title or
        callback id) since `since`, oldest first: how a start whose answer was lost
        is found. Reads the video list newest first, back to `since`."""
        oldest = since.timestamp() - START_LOOKUP_SKEW_SECONDS
        found: list[str] = []
        token = ""
        for _ in range(START_LOOKUP_PAGES):
            params = {"limit": "100", **({"token": token} if token else {})}
            videos, token = await self.http.call(
                "GET",
                self.base + "/v1/video.list",
                params=params,
                headers=self.headers,
                parse=_video_list,
                repeatable=True,
                deadline=deadline,
            )
            for video in videos:
                if reference in (video.get("video_title"), video.get("callback_id")):
                    found.append(str(video["video_id"]))
            if not token or not videos or float(videos[-1].get("created_at") or 0) < oldest:
                break
        return found[::-1]

    async def poll(self, job_id: str, *, deadline: float | None = None) -> Progress:
        """One look at the video. ProviderError when HeyGen reports it failed."""
        video = await self.http.call(
            "GET",
            self.base + "/v1/video_status.get",
            params={"video_id": job_id},
            headers=self.headers,
            parse=_video_status,
            repeatable=True,
            deadline=deadline,
        )
        status = video["status"]
        if status == "failed":
            error = video.get("error")
            why = error.get("message") or error.get("detail") if isinstance(error, dict) else error
            raise ProviderError(
                self.provider, f"{self.provider}: the video failed: {str(why or 'no reason')[:200]}"
            )
        if status != "completed":
            return Progress(status)
        return Progress(
            status,
            MediaResult(
                provider=self.provider,
                job_id=job_id,
                urls=(video["video_url"],),
                mime_type="video/mp4",
                usage=Usage(video_seconds=float(video["duration"])),
                thumbnail_url=str(video.get("thumbnail_url") or ""),
            ),
        )

    async def wait(
        self, job_id: str, *, deadline: float, wake: asyncio.Event | None = None
    ) -> MediaResult:
        """Poll with backoff until completed (or failed), up to `deadline`."""
        return await wait_until_done(
            lambda: self.poll(job_id, deadline=deadline),
            provider=self.provider,
            what=f"video {job_id}",
            schedule=self.schedule,
            deadline=deadline,
            sleep=self._sleep,
            wake=wake,
        )

    async def _fetch_listing(self) -> Listing:
        avatars = await self.http.call(
            "GET",
            self.base + "/v2/avatars",
            headers=self.headers,
            parse=lambda data: tuple(
                Avatar(
                    str(a["avatar_id"]),
                    str(a.get("avatar_name") or a["avatar_id"]),
                    str(a.get("preview_image_url") or ""),
                )
                for a in _data(data, self.provider)["avatars"]
            ),
            repeatable=True,
        )
        voices = await self.http.call(
            "GET",
            self.base + "/v2/voices",
            headers=self.headers,
            parse=lambda data: tuple(
                Voice(
                    str(v["voice_id"]),
                    str(v.get("name") or v["voice_id"]),
                    str(v.get("language") or ""),
                )
                for v in _data(data, self.provider)["voices"]
            ),
            repeatable=True,
        )
        return Listing(avatars, voices)


def _data(body: Any, provider: str) -> dict[str, Any]:
    """The `data` of a v2 answer; an `error` in a 2xx body is a refusal."""
    if body.get("error"):
        raise ProviderError(provider, f"{provider} refused the request: {str(body['error'])[:200]}")
    data = body["data"]
    if not isinstance(data, dict):
        raise Malformed("data is not an object")
    return data


def _video_list(body: Any) -> tuple[list[dict[str, Any]], str]:
    data = body["data"]
    videos = data["videos"]
    if not isinstance(videos, list) or not all(
        isinstance(v, dict) and isinstance(v.get("video_id"), str) and v["video_id"] for v in videos
    ):
        raise Malformed("data.videos[].video_id missing")
    return videos, str(data.get("token") or "")


def _video_status(body: Any) -> dict[str, Any]:
    data = body["data"]
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise Malformed("data.status missing")
    if data["status"] == "completed":
        if not isinstance(data.get("video_url"), str) or not data["video_url"]:
            raise Malformed("a completed video without video_url")
        duration = data.get("duration")
        if not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0:
            raise Malformed("a completed video without its duration")
    return data
