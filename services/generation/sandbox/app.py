"""The sandbox's HTTP surface (Starlette): the providers' paths and JSON fields, the
files its results point at, and its control endpoints.

    POST /v1/chat/completions                  OpenAI-compatible chat completions
    POST /api/rest/v1/generations              Leonardo: start an image generation
    GET  /api/rest/v1/generations/{id}         Leonardo: one generation
    POST /v2/video/generate                    HeyGen: start an avatar video
    GET  /v1/video_status.get?video_id=        HeyGen: one video's status
    GET  /v2/avatars, /v2/voices               HeyGen: the catalogue
    GET  /files/images/{seed}/{W}x{H}.png      a result image (a real PNG)
    GET  /files/videos/{seed}/{ms}.mp4         a result video (an MP4 placeholder)

    GET  /_sandbox/health                      200 while it serves
    GET  /_sandbox/requests[?path=prefix]      what reached it: time, method, path, status
    DELETE /_sandbox/requests                  forget them
    GET|POST|DELETE /_sandbox/faults           global faults: {"fault": spec, "path": prefix}

Every provider and file route takes faults (faults.py); the control routes never do
and are not recorded."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.generation.sandbox import content, mp4, png
from services.generation.sandbox.faults import (
    Fault,
    FaultBook,
    FaultSpecError,
    Rule,
    combined,
    markers,
    parse,
)
from services.generation.sandbox.jobs import Job, Jobs, Outcome, Phase

log = logging.getLogger(__name__)

FAULT_HEADER = "x-sandbox-fault"
HANG_LIMIT_SECONDS = 3600.0
MAX_SIDE = 1536

AVATARS = (
    ("sandbox-avatar-ada", "Ada (sandbox)", "female"),
    ("sandbox-avatar-ben", "Ben (sandbox)", "male"),
)
VOICES = (
    ("sandbox-voice-en-1", "Sandbox Voice One", "English", "female"),
    ("sandbox-voice-en-2", "Sandbox Voice Two", "English", "male"),
)

Produce = Callable[[Fault], Awaitable[Response]]


class BadRequest(Exception):
    """A request the real provider would refuse (400), with its error body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.body = body


@dataclass
class GlobalFault:
    id: int
    spec: str
    path: str
    fault: Fault

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "fault": self.spec, "path": self.path}


class Sandbox:
    def __init__(self, polls: int = 2) -> None:
        self.polls = polls  # polls a job needs to complete, unless a fault says otherwise
        self.book = FaultBook()
        self.faults: list[GlobalFault] = []
        self.requests: list[dict[str, Any]] = []
        self.jobs = Jobs()
        self._ids = itertools.count(1)

    async def serve(self, request: Request, body: bytes, prompt: str, produce: Produce) -> Response:
        """Record the request, apply its faults, else answer with `produce`."""
        entry: dict[str, Any] = {
            "seq": len(self.requests) + 1,
            "at": time.time(),
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "status": None,
            "fault": "",
        }
        self.requests.append(entry)
        try:
            rules = self._rules(request, body, prompt)
        except FaultSpecError as error:
            entry["status"] = 400
            return JSONResponse({"error": {"message": str(error), "type": "sandbox"}}, 400)
        extra = combined(rules)
        if extra.latency_ms:
            entry["fault"] = f"latency={extra.latency_ms}"
            await asyncio.sleep(extra.latency_ms / 1000)
        status_fault = self.book.status(rules)
        if status_fault is not None:
            assert status_fault.status is not None
            entry["fault"] = str(status_fault.status)
            response = _fault_response(status_fault.status, status_fault.retry_after)
        elif extra.hang:
            entry["fault"] = "hang"
            await _hang(request)
            return Response(status_code=504)  # to nobody: the client is gone
        elif extra.malformed:
            entry["fault"] = "malformed"
            response = Response(b'{"choices": [{"message": ', media_type="application/json")
        else:
            try:
                response = await produce(extra)
            except BadRequest as error:
                response = JSONResponse(error.body, 400)
        entry["status"] = response.status_code
        return response

    def _rules(self, request: Request, body: bytes, prompt: str) -> list[Rule]:
        """Header first, then prompt markers, then global faults."""
        fingerprint = (
            request.method,
            request.url.path,
            request.url.query,
            hashlib.sha256(body).hexdigest(),
        )
        rules = []
        if header := request.headers.get(FAULT_HEADER):
            rules.append(Rule(parse(header), ("request", *fingerprint, header)))
        for spec in markers(prompt):
            rules.append(Rule(parse(spec), ("request", *fingerprint, spec)))
        for fault in self.faults:
            if request.url.path.startswith(fault.path):
                rules.append(Rule(fault.fault, ("global", str(fault.id))))
        return rules

    def add_fault(self, spec: str, path: str) -> GlobalFault:
        fault = GlobalFault(next(self._ids), spec, path, parse(spec))
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()
        self.book.forget("global")

    def new_job(self, fault: Fault, **fields: Any) -> Job:
        outcome = Outcome.FAIL if fault.fail else Outcome.STUCK if fault.stuck else Outcome.COMPLETE
        return self.jobs.add(
            Job(
                polls_needed=fault.polls or self.polls,
                outcome=outcome,
                incomplete=fault.incomplete,
                **fields,
            )
        )


def _fault_response(status: int, retry_after: str) -> Response:
    headers = {}
    if status in (429, 503):
        headers["retry-after"] = (
            formatdate(time.time() + float(retry_after[1:]), usegmt=True)
            if retry_after.startswith("@")
            else retry_after
        )
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    return JSONResponse(
        {"error": {"message": f"sandbox fault: {status}", "type": kind, "code": "sandbox_fault"}},
        status,
        headers=headers,
    )


async def _hang(request: Request) -> None:
    """Answer nothing until the client gives up (or an hour passes)."""

    async def disconnect() -> None:
        # The body was read already: the next ASGI message is the disconnect.
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnect(), HANG_LIMIT_SECONDS)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _json(request: Request) -> tuple[bytes, dict[str, Any]]:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadRequest({"error": {"message": "the body must be a JSON object"}})
    return raw, data


def _int(data: dict[str, Any], key: str, default: int, low: int, high: int, body: Any) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(body(f"{key} must be an integer in {low}..{high}"))
    return value


# ---- OpenAI-compatible chat completions -------------------------------------------------


def _openai_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None}}


def build_routes(sandbox: Sandbox) -> list[Route]:
    async def chat(request: Request) -> Response:
        try:
            raw, data = await _json(request)
            model, messages = data.get("model"), data.get("messages")
            if not isinstance(model, str) or not model:
                raise BadRequest(_openai_error("model is required"))
            if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
            ):
                raise BadRequest(_openai_error("messages must be a list of {role, content}"))
            users = [m["content"] for m in messages if m.get("role") == "user"]
            if not users:
                raise BadRequest(_openai_error("messages need a user message"))
            max_tokens = data.get("max_tokens")
            if max_tokens is not None:
                max_tokens = _int(data, "max_tokens", 0, 1, 1_000_000, _openai_error)
        except BadRequest as error:
            return await sandbox.serve(request, b"", "", _refuse(error))
        prompt = users[-1]  # markers in earlier turns were for earlier requests

        async def produce(fault: Fault) -> Response:
            text, finish = content.reply(model, prompt, max_tokens)
            if fault.filtered:
                text, finish = "", "content_filter"
            prompt_tokens = sum(content.tokens(m["content"]) for m in messages)
            completion_tokens = content.tokens(text)
            reply: dict[str, Any] = {
                "id": "chatcmpl-" + content.digest(model, prompt).hex()[:24],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "sandbox",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
            if fault.incomplete:
                del reply["usage"]
            return JSONResponse(reply)

        return await sandbox.serve(request, raw, prompt, produce)

    # ---- Leonardo -----------------------------------------------------------------------

    def leonardo_error(message: str) -> dict[str, Any]:
        return {"error": message, "path": "$", "code": "validation-failed"}

    async def leonardo_create(request: Request) -> Response:
        try:
            raw, data = await _json(request)
            prompt = data.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise BadRequest(leonardo_error("prompt is required"))
            width = _int(data, "width", 512, 32, MAX_SIDE, leonardo_error)
            height = _int(data, "height", 512, 32, MAX_SIDE, leonardo_error)
            if width % 8 or height % 8:
                raise BadRequest(leonardo_error("width and height must be multiples of 8"))
            num_images = _int(data, "num_images", 1, 1, 8, leonardo_error)
            model = str(data.get("modelId") or "sandbox-image")
        except BadRequest as error:
            return await sandbox.serve(request, b"", "", _refuse(error))

        async def produce(fault: Fault) -> Response:
            job = sandbox.new_job(
                fault,
                kind="image",
                prompt=prompt,
                model=model,
                width=width,
                height=height,
                num_images=num_images,
            )
            return JSONResponse({"sdGenerationJob": {"generationId": job.id, "apiCreditCost": 0}})

        return await sandbox.serve(request, raw, prompt, produce)

    async def leonardo_get(request: Request) -> Response:
        generation_id = request.path_params["generation_id"]

        async def produce(fault: Fault) -> Response:
            found = sandbox.jobs.poll(generation_id)
            if found is None or found[0].kind != "image":
                return JSONResponse({"generations_by_pk": None})  # what Leonardo answers
            job, phase = found
            status = {Phase.PENDING: "PENDING", Phase.DONE: "COMPLETE", Phase.FAILED: "FAILED"}
            images = []
            if phase is Phase.DONE and not job.incomplete:
                for index in range(job.num_images):
                    seed = content.digest(job.model, job.prompt, str(index)).hex()[:32]
                    images.append(
                        {
                            "id": f"{job.id}-{index}",
                            "url": f"{_base(request)}/files/images/{seed}/"
                            f"{job.width}x{job.height}.png",
                            "nsfw": False,
                            "likeCount": 0,
                        }
                    )
            return JSONResponse(
                {
                    "generations_by_pk": {
                        "id": job.id,
                        "status": status[phase],
                        "prompt": job.prompt,
                        "modelId": job.model,
                        "imageWidth": job.width,
                        "imageHeight": job.height,
                        "createdAt": formatdate(job.created_at, usegmt=True),
                        "generated_images": images,
                    }
                }
            )

        return await sandbox.serve(request, b"", "", produce)

    # ---- HeyGen -------------------------------------------------------------------------

    def heygen_error(message: str) -> dict[str, Any]:
        return {"error": {"code": "invalid_parameter", "message": message}, "data": None}

    async def heygen_create(request: Request) -> Response:
        try:
            raw, data = await _json(request)
            inputs = data.get("video_inputs")
            if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
                raise BadRequest(heygen_error("video_inputs must hold one scene"))
            character, voice = inputs[0].get("character"), inputs[0].get("voice")
            if not isinstance(character, dict) or not isinstance(voice, dict):
                raise BadRequest(heygen_error("a scene needs a character and a voice"))
            avatar_id, voice_id = character.get("avatar_id"), voice.get("voice_id")
            script = voice.get("input_text")
            if avatar_id not in {a[0] for a in AVATARS}:
                raise BadRequest(heygen_error(f"avatar {avatar_id!r} not found"))
            if voice_id not in {v[0] for v in VOICES}:
                raise BadRequest(heygen_error(f"voice {voice_id!r} not found"))
            if not isinstance(script, str) or not script.strip():
                raise BadRequest(heygen_error("input_text is required"))
        except BadRequest as error:
            return await sandbox.serve(request, b"", "", _refuse(error))

        async def produce(fault: Fault) -> Response:
            job = sandbox.new_job(
                fault,
                kind="video",
                prompt=script,
                model="sandbox-avatar",
                avatar_id=str(avatar_id),
                voice_id=str(voice_id),
            )
            return JSONResponse({"error": None, "data": {"video_id": job.id}})

        return await sandbox.serve(request, raw, script, produce)

    async def heygen_status(request: Request) -> Response:
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
                "callback_id": None,
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
                    video_url=f"{_base(request)}/files/videos/{seed}/{round(seconds * 1000)}.mp4",
                    thumbnail_url=f"{_base(request)}/files/images/{seed}/320x180.png",
                    duration=None if job.incomplete else seconds,
                )
            return JSONResponse({"code": 100, "data": video, "message": "Success"})

        return await sandbox.serve(request, b"", "", produce)

    async def heygen_avatars(request: Request) -> Response:
        async def produce(fault: Fault) -> Response:
            avatars = [
                {
                    "avatar_id": avatar_id,
                    "avatar_name": name,
                    "gender": gender,
                    "preview_image_url": f"{_base(request)}/files/images/"
                    f"{content.digest(avatar_id).hex()[:32]}/256x256.png",
                    "preview_video_url": "",
                    "premium": False,
                }
                for avatar_id, name, gender in AVATARS
            ]
            return JSONResponse({"error": None, "data": {"avatars": avatars, "talking_photos": []}})

        return await sandbox.serve(request, b"", "", produce)

    async def heygen_voices(request: Request) -> Response:
        async def produce(fault: Fault) -> Response:
            voices = [
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
            return JSONResponse({"error": None, "data": {"voices": voices}})

        return await sandbox.serve(request, b"", "", produce)

    # ---- result files -------------------------------------------------------------------

    async def image_file(request: Request) -> Response:
        seed_hex, size = request.path_params["seed"], request.path_params["size"]

        async def produce(fault: Fault) -> Response:
            try:
                seed = bytes.fromhex(seed_hex)
                width, height = (int(side) for side in size.split("x"))
                if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or len(seed) < 7:
                    raise ValueError(size)
            except ValueError:
                return Response("no such image", 404, media_type="text/plain")
            image = await asyncio.to_thread(png.render, seed, width, height)
            return Response(image, media_type="image/png")

        return await sandbox.serve(request, b"", "", produce)

    async def video_file(request: Request) -> Response:
        millis = request.path_params["millis"]

        async def produce(fault: Fault) -> Response:
            if not millis.isdigit() or int(millis) > 86_400_000:
                return Response("no such video", 404, media_type="text/plain")
            return Response(mp4.placeholder(int(millis)), media_type="video/mp4")

        return await sandbox.serve(request, b"", "", produce)

    # ---- control ------------------------------------------------------------------------

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.requests.clear()
            return Response(status_code=204)
        prefix = request.query_params.get("path", "")
        return JSONResponse(
            {"requests": [r for r in sandbox.requests if r["path"].startswith(prefix)]}
        )

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.clear_faults()
            return Response(status_code=204)
        if request.method == "POST":
            try:
                data = json.loads(await request.body())
                spec, path = data["fault"], data.get("path", "")
                if not isinstance(spec, str) or not isinstance(path, str):
                    raise TypeError("fault and path must be strings")
                added = sandbox.add_fault(spec, path)
            except (ValueError, KeyError, TypeError) as error:
                return JSONResponse({"error": f"bad fault: {error}"}, 400)
            return JSONResponse(added.public(), 201)
        return JSONResponse({"faults": [f.public() for f in sandbox.faults]})

    return [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/api/rest/v1/generations", leonardo_create, methods=["POST"]),
        Route("/api/rest/v1/generations/{generation_id}", leonardo_get, methods=["GET"]),
        Route("/v2/video/generate", heygen_create, methods=["POST"]),
        Route("/v1/video_status.get", heygen_status, methods=["GET"]),
        Route("/v2/avatars", heygen_avatars, methods=["GET"]),
        Route("/v2/voices", heygen_voices, methods=["GET"]),
        Route("/files/images/{seed}/{size}.png", image_file, methods=["GET"]),
        Route("/files/videos/{seed}/{millis}.mp4", video_file, methods=["GET"]),
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/requests", requests, methods=["GET", "DELETE"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
    ]


def _refuse(error: BadRequest) -> Produce:
    async def produce(fault: Fault) -> Response:
        raise error

    return produce


def create_app(sandbox: Sandbox | None = None) -> Starlette:
    """The sandbox as an ASGI app; pass a `Sandbox` to inspect its state in-process."""
    state = sandbox or Sandbox()
    app = Starlette(routes=build_routes(state))
    app.state.sandbox = state
    return app
