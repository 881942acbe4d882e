"""An OpenAI-compatible LLM server (OpenAI itself, Ollama, vLLM): chat completions,
with deterministic replies (content.py) and honest usage.

    POST /v1/chat/completions

Faults beyond the shared ones (faults.py): `filtered` withholds the reply
(finish_reason `content_filter`), `incomplete` leaves out `usage`."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import content, serving
from sandbox.faults import Fault
from sandbox.serving import BadRequest


def error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None}}


async def chat(request: Request) -> Response:
    sandbox = serving.of(request)
    try:
        raw, data = await serving.read_json(request)
        model, messages = data.get("model"), data.get("messages")
        if not isinstance(model, str) or not model:
            raise BadRequest(error("model is required"))
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
        ):
            raise BadRequest(error("messages must be a list of {role, content}"))
        users = [m["content"] for m in messages if m.get("role") == "user"]
        if not users:
            raise BadRequest(error("messages need a user message"))
        max_tokens = data.get("max_tokens")
        if max_tokens is not None:
            max_tokens = serving.int_field(data, "max_tokens", 0, 1, 1_000_000, error)
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)
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


ROUTES = [Route("/v1/chat/completions", chat, methods=["POST"])]
