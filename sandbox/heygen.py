"""HeyGen's avatar-video API: start a video, then poll its status until it is
rendered (an MP4 placeholder as long as the avatar takes to say the script, and a
thumbnail, files.py); and the catalogue of avatars and voices.

    POST /v2/video/generate                    start an avatar video
    GET  /v1/video_status.get?video_id=        one video's status
    GET  /v1/video.list?limit=&token=          the account's videos, newest first
                                               (with the title and callback_id each
                                               was started with; `token` pages on)
    GET  /v2/avatars, /v2/voices               the catalogue

A video completes on its second poll; the job faults `fail`, `stuck`, `polls=N` and
`incomplete` (completed without a duration) change that (faults.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import content, files, serving
from sandbox.faults import Fault
from sandbox.jobs import Phase
from sandbox.serving import BadRequest

AVATARS = (
    ("sandbox-avatar-ada", "Ada (sandbox)", "female"),
    ("sandbox-avatar-ben", "Ben (sandbox)", "male"),
)
VOICES = (
    ("sandbox-voice-en-1", "Sandbox Voice One", "English", "female"),
    ("sandbox-voice-en-2", "Sandbox Voice Two", "English", "male"),
)


def error(message: str) -> dict[str, Any]:
    return {"error": {"code": "invalid_parameter", "message": message}, "data": None}


async def create(request: Request) -> Response:
    sandbox = serving.of(request)
    try:
        raw, data = await serving.read_json(request)
        inputs = data.get("video_inputs")
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise BadRequest(error("video_inputs must hold one scene"))
        character, voice = inputs[0].get("character"), inputs[0].get("voice")
        if not isinstance(character, dict) or not isinstance(voice, dict):
            raise BadRequest(error("a scene needs a character and a voice"))
        avatar_id, voice_id = character.get("avatar_id"), voice.get("voice_id")
        script = voice.get("input_text")
        if avatar_id not in {a[0] for a in AVATARS}:
            raise BadRequest(error(f"avatar {avatar_id!r} not found"))
        if voice_id not in {v[0] for v in VOICES}:
            raise BadRequest(error(f"voice {voice_id!r} not found"))
        if not isinstance(script, str) or not script.strip():
            raise BadRequest(error("input_text is required"))
        dimension = data.get("dimension") or {"width": 1280, "height": 720}
        if not isinstance(dimension, dict):
            raise BadRequest(error("dimension must be {width, height}"))
        width, height = dimension.get("width"), dimension.get("height")
        title, callback_id = data.get("title") or "", data.get("callback_id") or ""
        if not isinstance(title, str) or not isinstance(callback_id, str):
            raise BadRequest(error("title and callback_id must be strings"))
        if not all(isinstance(v, int) and 64 <= v <= 4096 for v in (width, height)):
            raise BadRequest(error("dimension must be {width, height} of 64..4096 pixels"))
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)

    async def produce(fault: Fault) -> Response:
        job = sandbox.new_job(
            fault,
            "heygen",
            kind="video",
            prompt=script,
            model="sandbox-avatar",
            avatar_id=str(avatar_id),
            voice_id=str(voice_id),
            width=width,
            height=height,
            title=title,
            callback_id=callback_id,
        )
        return JSONResponse({"error": None, "data": {"video_id": job.id}})

    return await sandbox.serve(request, raw, script, produce)


async def status(request: Request) -> Response:
    sandbox = serving.of(request)
    video_id = request.query_params.get("video_id", "")

    async def produce(fault: Fault) -> Response:
        found = sandbox.jobs.poll(video_id)
        if found is None or found[0].kind != "video":
            return JSONResponse({"code": 404, "data": None, "message": "video not found"}, 404)
        job, phase = found
        video: dict[str, Any] = {
            "id": job.id,
            "status": "pending" if job.polls == 1 else "processing",
            "video_url": None,
            "thumbnail_url": None,
            "duration": None,
            "error": None,
            "callback_id": job.callback_id or None,
            "created_at": int(job.created_at),
        }
        if phase is Phase.FAILED:
            video["status"] = "failed"
            video["error"] = {
                "code": 40001,
                "message": "sandbox: rendering failed (fault)",
                "detail": "the request asked the sandbox to fail this video",
            }
        elif phase is Phase.DONE:
            seconds = content.video_seconds(job.prompt)
            seed = content.digest(job.avatar_id, job.voice_id, job.prompt).hex()[:32]
            video.update(
                status="completed",
                video_url=files.video_url(request, seed, round(seconds * 1000)),
                thumbnail_url=files.image_url(request, seed, 320, 180),
                duration=None if job.incomplete else seconds,
            )
        return JSONResponse({"code": 100, "data": video, "message": "Success"})

    return await sandbox.serve(request, b"", "", produce)


LIST_LIMIT = 100


async def video_list(request: Request) -> Response:
    """The account's videos, newest first; `token` is where the next page starts."""
    sandbox = serving.of(request)
    try:
        query = dict(request.query_params)
        limit = serving.int_field(query, "limit", LIST_LIMIT, 1, LIST_LIMIT, error, text=True)
        start = serving.int_field(query, "token", 0, 0, 10**6, error, text=True)
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)

    async def produce(fault: Fault) -> Response:
        videos = sandbox.jobs.listed(("video",))
        page = videos[start : start + limit]
        listed = [
            {
                "video_id": job.id,
                "video_title": job.title,
                "callback_id": job.callback_id or None,
                "status": _STATUS[sandbox.jobs.phase(job)],
                "created_at": int(job.created_at),
                "type": "GENERATED",
            }
            for job in page
        ]
        more = str(start + limit) if start + limit < len(videos) else None
        return JSONResponse({"code": 100, "data": {"videos": listed, "token": more}})

    return await sandbox.serve(request, b"", "", produce)


_STATUS = {Phase.PENDING: "processing", Phase.DONE: "completed", Phase.FAILED: "failed"}


async def avatars(request: Request) -> Response:
    async def produce(fault: Fault) -> Response:
        listed = [
            {
                "avatar_id": avatar_id,
                "avatar_name": name,
                "gender": gender,
                "preview_image_url": files.image_url(
                    request, content.digest(avatar_id).hex()[:32], 256, 256
                ),
                "preview_video_url": "",
                "premium": False,
            }
            for avatar_id, name, gender in AVATARS
        ]
        return JSONResponse({"error": None, "data": {"avatars": listed, "talking_photos": []}})

    return await serving.of(request).serve(request, b"", "", produce)


async def voices(request: Request) -> Response:
    async def produce(fault: Fault) -> Response:
        listed = [
            {
                "voice_id": voice_id,
                "name": name,
                "language": language,
                "gender": gender,
                "preview_audio": "",
                "support_pause": True,
                "emotion_support": False,
            }
            for voice_id, name, language, gender in VOICES
        ]
        return JSONResponse({"error": None, "data": {"voices": listed}})

    return await serving.of(request).serve(request, b"", "", produce)


ROUTES = [
    Route("/v2/video/generate", create, methods=["POST"]),
    Route("/v1/video_status.get", status, methods=["GET"]),
    Route("/v1/video.list", video_list, methods=["GET"]),
    Route("/v2/avatars", avatars, methods=["GET"]),
    Route("/v2/voices", voices, methods=["GET"]),
]
