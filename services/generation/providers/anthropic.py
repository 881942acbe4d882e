"""TEXT and CHAT on Anthropic's Messages API (its `/v1` base URL and an API key).

    POST {base}/messages  headers x-api-key, anthropic-version: 2023-06-01
      {model, max_tokens, system?, messages: [{role, content}], temperature?, stream?}
      -> {content: [{type: "text", text}], stop_reason, model,
          usage: {input_tokens, output_tokens}}

The system prompt travels as `system`, the history and the prompt as `messages`.
`max_tokens` is required by the API: the request's cap, else DEFAULT_MAX_TOKENS.
Stop reasons map to klik's: `max_tokens` is "length", `refusal` is ContentRejected,
any other is "stop". `usage` drives the price, so a reply without it is malformed.

`stream` reads Anthropic's events: `message_start` (the model, input_tokens),
`content_block_delta` with `text_delta` pieces, `message_delta` (the stop reason,
output_tokens), `message_stop`; `ping` and the block starts and stops carry nothing
needed, an `error` event breaks the stream."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from services.generation.catalogue import Endpoint
from services.generation.domain import Usage
from services.generation.providers.chat import ChatApi, turns
from services.generation.providers.errors import ContentRejected, Malformed
from services.generation.providers.http import ProviderHttp
from services.generation.providers.sse import Event
from services.generation.providers.values import (
    TextDelta,
    TextEnd,
    TextRequest,
    TextResult,
    TextStreamItem,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_FINISH = {"max_tokens": "length"}  # end_turn, stop_sequence, ...: "stop"


class Anthropic(ChatApi):
    def __init__(self, http: ProviderHttp, endpoint: Endpoint) -> None:
        headers = {"accept": "application/json", "anthropic-version": API_VERSION}
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        super().__init__(http, endpoint.base_url.rstrip("/") + "/messages", headers)

    def _body(self, request: TextRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": turns(request),
        }
        if request.system_prompt:
            body["system"] = request.system_prompt
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _parse(self, data: Any, requested_model: str) -> TextResult:
        blocks = data["content"]
        if not isinstance(blocks, list):
            raise Malformed("content is not a list of blocks")
        texts = [b["text"] for b in blocks if b.get("type") == "text"]
        if not all(isinstance(t, str) for t in texts):
            raise Malformed("a text block's text is not text")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            raise Malformed("no usage in the response")
        return TextResult(
            provider=self.provider,
            model=str(data.get("model") or requested_model),
            text="".join(texts),
            usage=_usage(usage.get("input_tokens"), usage.get("output_tokens")),
            finish_reason=self._finish(data.get("stop_reason")),
        )

    async def _decode(
        self, events: AsyncIterator[Event], requested_model: str
    ) -> AsyncGenerator[TextStreamItem, None]:
        model, stop, finish = requested_model, None, "stop"
        counts: dict[str, Any] = {}
        async for event in events:
            data = json.loads(event.data)
            if not isinstance(data, dict):
                raise Malformed("an event is not a JSON object")
            kind = data.get("type")
            if kind == "message_start":
                message = data["message"]
                model = str(message.get("model") or model)
                counts.update(_counts(message.get("usage"), "input_tokens"))
            elif kind == "content_block_delta":
                delta = data["delta"]
                if delta.get("type") == "text_delta":
                    text = delta["text"]
                    if not isinstance(text, str):
                        raise Malformed("a text_delta's text is not text")
                    if text:
                        yield TextDelta(text)
            elif kind == "message_delta":
                stop = data["delta"].get("stop_reason")
                # Cumulative; newer versions repeat input_tokens here.
                counts.update(_counts(data.get("usage"), "input_tokens", "output_tokens"))
                finish = self._finish(stop)  # a refusal raises here, mid-stream
            elif kind == "message_stop":
                if stop is None:
                    raise Malformed("the stream stopped without a stop_reason")
                usage = None
                if {"input_tokens", "output_tokens"} <= counts.keys():
                    usage = _usage(counts["input_tokens"], counts["output_tokens"])
                yield TextEnd(self.provider, model, finish, usage)
                return
            elif kind == "error":
                error = data.get("error") or {}
                raise Malformed(f"the stream sent an error: {str(error)[:200]}")
        raise Malformed("the stream ended before message_stop")

    def _finish(self, stop_reason: Any) -> str:
        if stop_reason == "refusal":
            raise ContentRejected(self.provider, f"{self.provider} refused to reply")
        return _FINISH.get(str(stop_reason), "stop")


def _counts(usage: Any, *keys: str) -> dict[str, Any]:
    if not isinstance(usage, dict):
        return {}
    return {key: usage[key] for key in keys if usage.get(key) is not None}


def _usage(input_tokens: Any, output_tokens: Any) -> Usage:
    for value in (input_tokens, output_tokens):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Malformed(f"usage token counts are not counts: {input_tokens}, {output_tokens}")
    return Usage(
        prompt_tokens=input_tokens,
        completion_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
