"""Leonardo's image API: start a generation, then poll it until its images are
ready (real PNGs, files.py).

    POST /api/rest/v1/generations              start an image generation (from an
                                               uploaded init image: image-to-image)
    POST /api/rest/v1/init-image               a presigned upload for an init image
    POST /_sandbox/s3/init-images              the S3 bucket it uploads to (multipart)
    POST /api/rest/v1/generations-motion-svd   animate an image: a short video clip
    GET  /api/rest/v1/generations/{id}         one generation (images or motion)
    GET  /api/rest/v1/me                       the account (its user id)
    GET  /api/rest/v1/generations/user/{id}    the account's generations, newest
                                               first (?offset=&limit=, at most 50)

A generation completes on its second poll; the job faults `fail`, `stuck`,
`polls=N`, `render=<ms>` and `incomplete` (COMPLETE without images) change that
(faults.py)."""

from __future__ import annotations

import email.policy
import json
import uuid
from email.parser import BytesParser
from email.utils import formatdate
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import content, files, serving
from sandbox.faults import Fault
from sandbox.jobs import Job, Phase
from sandbox.serving import BadRequest

STATUS = {Phase.PENDING: "PENDING", Phase.DONE: "COMPLETE", Phase.FAILED: "FAILED"}


def error(message: str) -> dict[str, Any]:
    return {"error": message, "path": "$", "code": "validation-failed"}


async def create(request: Request) -> Response:
    sandbox = serving.of(request)
    try:
        raw, data = await serving.read_json(request)
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadRequest(error("prompt is required"))
        width = serving.int_field(data, "width", 512, 32, files.MAX_SIDE, error)
        height = serving.int_field(data, "height", 512, 32, files.MAX_SIDE, error)
        if width % 8 or height % 8:
            raise BadRequest(error("width and height must be multiples of 8"))
        num_images = serving.int_field(data, "num_images", 1, 1, 8, error)
        model = str(data.get("modelId") or "sandbox-image")
        init_image = data.get("init_image_id") or ""
        if init_image and init_image not in sandbox.init_images:
            raise BadRequest(error(f"init image {init_image!r} was not uploaded"))
        strength = data.get("init_strength", 0.5)
        if not isinstance(strength, int | float) or not 0.1 <= strength <= 0.9:
            raise BadRequest(error("init_strength must be 0.1..0.9"))
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)

    async def produce(fault: Fault) -> Response:
        job = sandbox.new_job(
            fault,
            "leonardo",
            kind="image",
            # An init image changes the result: it goes into the seed.
            prompt=prompt + (f"\x1f{init_image}" if init_image else ""),
            given_prompt=prompt,
            model=model,
            width=width,
            height=height,
            num_images=num_images,
        )
        return JSONResponse({"sdGenerationJob": {"generationId": job.id, "apiCreditCost": 0}})

    return await sandbox.serve(request, raw, prompt, produce)


async def get(request: Request) -> Response:
    sandbox = serving.of(request)
    generation_id = request.path_params["generation_id"]

    async def produce(fault: Fault) -> Response:
        found = sandbox.jobs.poll(generation_id)
        if found is None or found[0].kind not in ("image", "motion"):
            return JSONResponse({"generations_by_pk": None})  # what Leonardo answers
        job, phase = found
        return JSONResponse({"generations_by_pk": _generation(request, job, phase)})

    return await sandbox.serve(request, b"", "", produce)


def _generation(request: Request, job: Job, phase: Phase) -> dict[str, Any]:
    """A generation as Leonardo shows it (one, or in the account's list)."""
    images = []
    if phase is Phase.DONE and not job.incomplete:
        for index in range(job.num_images):
            seed = content.digest(job.model, job.prompt, str(index)).hex()[:32]
            image: dict[str, Any] = {
                "id": f"{job.id}-{index}",
                "url": files.image_url(request, seed, job.width, job.height),
                "nsfw": False,
                "likeCount": 0,
                "motionMP4URL": None,
            }
            if job.kind == "motion":
                image["motionMP4URL"] = files.video_url(request, seed, MOTION_MILLIS)
            images.append(image)
    return {
        "id": job.id,
        "status": STATUS[phase],
        "prompt": job.given_prompt,
        "modelId": job.model,
        "imageWidth": job.width,
        "imageHeight": job.height,
        "motion": job.kind == "motion",
        "motionStrength": job.motion_strength or None,
        "createdAt": formatdate(job.created_at, usegmt=True),
        "generated_images": images,
    }


# The sandbox's one account.
USER_ID = "sandbox-leonardo-user"
LIST_LIMIT = 50


async def me(request: Request) -> Response:
    async def produce(fault: Fault) -> Response:
        user = {"id": USER_ID, "username": "sandbox"}
        return JSONResponse({"user_details": [{"user": user, "subscriptionTokens": 0}]})

    return await serving.of(request).serve(request, b"", "", produce)


async def user_generations(request: Request) -> Response:
    """The account's generations, newest first (not counted as polls)."""
    sandbox = serving.of(request)
    try:
        query = dict(request.query_params)
        offset = serving.int_field(query, "offset", 0, 0, 10**6, error, text=True)
        limit = serving.int_field(query, "limit", 10, 1, LIST_LIMIT, error, text=True)
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)

    async def produce(fault: Fault) -> Response:
        if request.path_params["user_id"] != USER_ID:
            return JSONResponse({"generations": []})
        jobs = sandbox.jobs.listed(("image", "motion"))[offset : offset + limit]
        listed = [_generation(request, job, sandbox.jobs.phase(job)) for job in jobs]
        return JSONResponse({"generations": listed})

    return await sandbox.serve(request, b"", "", produce)


# A Motion (SVD) clip: four seconds.
MOTION_MILLIS = 4000
EXTENSIONS = ("png", "jpg", "jpeg", "webp")


async def init_image(request: Request) -> Response:
    """A presigned upload: where and with which form fields to POST the file."""
    sandbox = serving.of(request)
    try:
        raw, data = await serving.read_json(request)
        extension = data.get("extension")
        if extension not in EXTENSIONS:
            raise BadRequest(error(f"extension must be one of {', '.join(EXTENSIONS)}"))
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)

    async def produce(fault: Fault) -> Response:
        image_id = uuid.uuid4().hex
        key = f"init-images/{image_id}.{extension}"
        fields = {"key": key, "Content-Type": f"image/{extension}", "policy": "sandbox"}
        return JSONResponse(
            {
                "uploadInitImage": {
                    "id": image_id,
                    "fields": json.dumps(fields),
                    "key": key,
                    "url": f"{serving.base_url(request)}/_sandbox/s3/init-images",
                }
            }
        )

    return await sandbox.serve(request, raw, "", produce)


async def s3_upload(request: Request) -> Response:
    """The bucket: a multipart form with the presigned fields, then the file."""
    body = await request.body()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"content-type: " + request.headers.get("content-type", "").encode() + b"\r\n\r\n" + body
    )
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name, payload = (
            part.get_param("name", header="content-disposition"),
            part.get_payload(decode=True),
        )
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    key = parts.get("key", b"").decode()
    image_id = key.removeprefix("init-images/").rpartition(".")[0]
    if not key.startswith("init-images/") or not parts.get("file"):
        return Response("<Error><Code>InvalidArgument</Code></Error>", 400)
    serving.of(request).init_images[image_id] = parts["file"]
    return Response(status_code=204)


async def motion(request: Request) -> Response:
    sandbox = serving.of(request)
    try:
        raw, data = await serving.read_json(request)
        image_id = data.get("imageId")
        if not isinstance(image_id, str) or not image_id:
            raise BadRequest(error("imageId is required"))
        if data.get("isInitImage") and image_id not in sandbox.init_images:
            raise BadRequest(error(f"init image {image_id!r} was not uploaded"))
        strength = serving.int_field(data, "motionStrength", 5, 1, 10, error)
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)

    async def produce(fault: Fault) -> Response:
        job = sandbox.new_job(
            fault,
            "leonardo",
            kind="motion",
            prompt=image_id,
            model="sandbox-motion",
            motion_strength=strength,
            width=512,
            height=512,
            num_images=1,
        )
        return JSONResponse(
            {"motionSvdGenerationJob": {"generationId": job.id, "apiCreditCost": 0}}
        )

    return await sandbox.serve(request, raw, "", produce)


ROUTES = [
    Route("/api/rest/v1/init-image", init_image, methods=["POST"]),
    Route("/_sandbox/s3/init-images", s3_upload, methods=["POST"]),
    Route("/api/rest/v1/generations-motion-svd", motion, methods=["POST"]),
    Route("/api/rest/v1/generations", create, methods=["POST"]),
    Route("/api/rest/v1/me", me, methods=["GET"]),
    Route("/api/rest/v1/generations/user/{user_id}", user_generations, methods=["GET"]),
    Route("/api/rest/v1/generations/{generation_id}", get, methods=["GET"]),
]
