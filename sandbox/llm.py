"""An OpenAI-compatible LLM server (OpenAI itself, Ollama, vLLM): chat completions,
with deterministic replies (content.py) and honest usage.

    POST /v1/chat/completions

With `"stream": true` the reply streams as OpenAI's server-sent events
(streaming.py): a `chat.completion.chunk` with the role, one chunk per token (the
last with its `finish_reason`), with `"stream_options": {"include_usage": true}` a
chunk with no choices and the `usage`, then `data: [DONE]`. The tokens join into the
non-streamed reply and there are as many as its `completion_tokens`.

Faults beyond the shared ones (faults.py): `filtered` withholds the reply
(finish_reason `content_filter`), `incomplete` leaves out `usage` (a stream's usage
chunk too); streams take `rate`, `drop` and `stall`."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import content, serving
from sandbox.faults import Fault
from sandbox.serving import BadRequest
from sandbox.streaming import EventStream, Script, event


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
        stream, options = data.get("stream", False), data.get("stream_options") or {}
        if not isinstance(stream, bool) or not isinstance(options, dict):
            raise BadRequest(error("stream must be a boolean and stream_options an object"))
        include_usage = options.get("include_usage") is True
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)
    prompt = users[-1]  # markers in earlier turns were for earlier requests

    async def produce(fault: Fault) -> Response:
        text, finish = content.reply(model, prompt, max_tokens, fault.words)
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
        if stream:
            script = _chunks(reply, text, include_usage)
            record = sandbox.streams.open(reply["id"], model, request.url.path)
            return EventStream(script, fault, record)
        return JSONResponse(reply)

    return await sandbox.serve(request, raw, prompt, produce)


def _chunks(reply: dict[str, Any], text: str, include_usage: bool) -> Script:
    """The reply as OpenAI streams it: `usage` is null on every chunk but the last
    when it was asked for (and there is one)."""
    finish = reply["choices"][0]["finish_reason"]
    usage = reply.get("usage")
    same = {key: reply[key] for key in ("id", "created", "model", "system_fingerprint")}
    same["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return event({**same, "choices": [choice], **({"usage": None} if include_usage else {})})

    pieces = content.pieces(text)
    tokens = [
        chunk({"content": piece}, finish if i == len(pieces) - 1 else None)
        for i, piece in enumerate(pieces)
    ]
    tail = [] if pieces else [chunk({}, finish)]  # nothing to say: the finish alone
    if include_usage and usage is not None:
        last = {key: reply[key] for key in ("id", "created", "model", "system_fingerprint")}
        tail.append(
            event({**last, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        )
    tail.append(event("[DONE]"))
    return Script([chunk({"role": "assistant", "content": ""}, None)], tokens, tail)


ROUTES = [Route("/v1/chat/completions", chat, methods=["POST"])]
