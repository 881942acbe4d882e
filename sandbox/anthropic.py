"""Anthropic's Messages API, with the sandbox's deterministic replies (content.py) and
honest usage, the same as the OpenAI-compatible server's (llm.py) for the same model
and prompt.

    POST /v1/messages   headers x-api-key (any, or none), anthropic-version (required)
      {model, max_tokens, system?, messages: [{role, content: str | [{type: "text",
       text}]}], stream?, temperature?}
      -> {id, type: "message", role: "assistant", model, content: [{type: "text",
          text}], stop_reason: "end_turn" | "max_tokens", usage: {input_tokens,
          output_tokens}}

With `"stream": true` the reply streams as Anthropic's events (streaming.py):
`message_start` (with usage.input_tokens), `content_block_start`, `ping`, one
`content_block_delta` (`text_delta`) per token, `content_block_stop`,
`message_delta` ({delta: {stop_reason}, usage: {output_tokens}}), `message_stop`.

Faults as for chat completions: `filtered` withholds the reply (stop_reason
`refusal`), `incomplete` leaves out `usage`, streams take `rate`, `drop`, `stall`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import content, serving
from sandbox.faults import Fault
from sandbox.serving import BadRequest
from sandbox.streaming import EventStream, Script, event

_STOP = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}


def error(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def _text(value: Any, what: str) -> str:
    """A content field's text: a string, or a list of text blocks."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in value
    ):
        return "\n".join(b["text"] for b in value)
    raise BadRequest(error(f"{what} must be a string or a list of text blocks"))


async def messages(request: Request) -> Response:
    sandbox = serving.of(request)
    try:
        raw, data = await serving.read_json(request)
        if not request.headers.get("anthropic-version"):
            raise BadRequest(error("anthropic-version: header is required"))
        model, turns = data.get("model"), data.get("messages")
        if not isinstance(model, str) or not model:
            raise BadRequest(error("model: Field required"))
        if "max_tokens" not in data:
            raise BadRequest(error("max_tokens: Field required"))
        max_tokens = serving.int_field(data, "max_tokens", 0, 1, 1_000_000, error)
        if not isinstance(turns, list) or not turns:
            raise BadRequest(error("messages: at least one message is required"))
        texts = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
                raise BadRequest(error(f"messages.{i}.role must be user or assistant"))
            texts.append((turn["role"], _text(turn.get("content"), f"messages.{i}.content")))
        if texts[-1][0] != "user":
            raise BadRequest(error("the last message must be a user message"))
        system = _text(data.get("system", ""), "system")
        stream = data.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest(error("stream must be a boolean"))
    except BadRequest as refusal:
        return await sandbox.refuse(request, refusal)
    prompt = texts[-1][1]  # markers in earlier turns were for earlier requests

    async def produce(fault: Fault) -> Response:
        text, finish = content.reply(model, prompt, max_tokens, fault.words)
        if fault.filtered:
            text, finish = "", "content_filter"
        input_tokens = content.tokens(system) + sum(content.tokens(t) for _, t in texts)
        reply: dict[str, Any] = {
            "id": "msg_" + content.digest(model, prompt).hex()[:24],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": _STOP[finish],
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": content.tokens(text)},
        }
        if fault.incomplete:
            del reply["usage"]
        if stream:
            record = sandbox.streams.open(reply["id"], model, request.url.path)
            return EventStream(_events(reply, text), fault, record)
        return JSONResponse(reply)

    return await sandbox.serve(request, raw, prompt, produce)


def _events(reply: dict[str, Any], text: str) -> Script:
    usage = reply.get("usage")
    start = {**reply, "content": [], "stop_reason": None}
    if usage is not None:
        start["usage"] = {"input_tokens": usage["input_tokens"], "output_tokens": 1}
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": reply["stop_reason"], "stop_sequence": None},
    }
    if usage is not None:
        delta["usage"] = {"output_tokens": usage["output_tokens"]}

    def block(kind: str, **fields: Any) -> bytes:
        return event({"type": kind, "index": 0, **fields}, kind)

    return Script(
        head=[
            event({"type": "message_start", "message": start}, "message_start"),
            block("content_block_start", content_block={"type": "text", "text": ""}),
            event({"type": "ping"}, "ping"),
        ],
        tokens=[
            block("content_block_delta", delta={"type": "text_delta", "text": piece})
            for piece in content.pieces(text)
        ],
        tail=[
            block("content_block_stop"),
            event(delta, "message_delta"),
            event({"type": "message_stop"}, "message_stop"),
        ],
    )


ROUTES = [Route("/v1/messages", messages, methods=["POST"])]
