"""Leonardo's image API: start a generation, then poll it until its images are
ready (real PNGs, files.py).

    POST /api/rest/v1/generations              start an image generation
    GET  /api/rest/v1/generations/{id}         one generation

A generation completes on its second poll; the job faults `fail`, `stuck`,
`polls=N` and `incomplete` (COMPLETE without images) change that (faults.py)."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import content, files, serving
from sandbox.faults import Fault
from sandbox.jobs import Phase
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
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)

    async def produce(fault: Fault) -> Response:
        job = sandbox.new_job(
            fault,
            "leonardo",
            kind="image",
            prompt=prompt,
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
        if found is None or found[0].kind != "image":
            return JSONResponse({"generations_by_pk": None})  # what Leonardo answers
        job, phase = found
        images = []
        if phase is Phase.DONE and not job.incomplete:
            for index in range(job.num_images):
                seed = content.digest(job.model, job.prompt, str(index)).hex()[:32]
                images.append(
                    {
                        "id": f"{job.id}-{index}",
                        "url": files.image_url(request, seed, job.width, job.height),
                        "nsfw": False,
                        "likeCount": 0,
                    }
                )
        return JSONResponse(
            {
                "generations_by_pk": {
                    "id": job.id,
                    "status": STATUS[phase],
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


ROUTES = [
    Route("/api/rest/v1/generations", create, methods=["POST"]),
    Route("/api/rest/v1/generations/{generation_id}", get, methods=["GET"]),
]
