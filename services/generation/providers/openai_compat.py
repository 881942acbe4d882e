"""TEXT and CHAT on an OpenAI-compatible chat completions endpoint: OpenAI itself,
or a local Ollama / vLLM server (their `/v1` base URL, usually no key).

    POST {base}/chat/completions  {model, messages, max_tokens?, temperature?}
      -> {choices: [{message: {content}, finish_reason}], usage: {prompt_tokens,
          completion_tokens, total_tokens}, model}

TEXT sends the prompt as one user message (the legacy /completions endpoint is gone
from current servers); CHAT sends the history before it. `usage` drives the price,
so a response without it is refused as malformed.

`stream` sends the same body with `"stream": true, "stream_options":
{"include_usage": true}` and reads the server-sent chunks: `choices[0].delta.content`
pieces, a `finish_reason`, a last chunk with no choices and the `usage` (which some
servers never send: the stream then ends with usage None), then `data: [DONE]`."""

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


class OpenAICompatible(ChatApi):
    stream_fields = {"stream": True, "stream_options": {"include_usage": True}}

    def __init__(self, http: ProviderHttp, endpoint: Endpoint) -> None:
        headers = {"accept": "application/json"}
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        super().__init__(http, endpoint.base_url.rstrip("/") + "/chat/completions", headers)

    def _body(self, request: TextRequest) -> dict[str, Any]:
        messages = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        body: dict[str, Any] = {"model": request.model, "messages": messages + turns(request)}
        if request.max_tokens:
            # `max_tokens` is what Ollama, vLLM and OpenAI's chat models accept.
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _parse(self, data: Any, requested_model: str) -> TextResult:
        choice = data["choices"][0]
        content = choice["message"].get("content")
        if content is not None and not isinstance(content, str):
            raise Malformed("choices[0].message.content is not text")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            raise Malformed("no usage in the response")
        finish = str(choice.get("finish_reason") or "stop")
        if finish == "content_filter":
            raise self._filtered()
        return TextResult(
            provider=self.provider,
            model=str(data.get("model") or requested_model),
            text=content or "",
            usage=_usage(usage),
            finish_reason=finish,
        )

    async def _decode(
        self, events: AsyncIterator[Event], requested_model: str
    ) -> AsyncGenerator[TextStreamItem, None]:
        model, finish, usage = requested_model, "", None
        async for event in events:
            if event.data == "[DONE]":
                if not finish:
                    raise Malformed("the stream ended without a finish_reason")
                yield TextEnd(self.provider, model, finish, usage)
                return
            chunk = json.loads(event.data)
            if not isinstance(chunk, dict):
                raise Malformed("a chunk is not a JSON object")
            if "error" in chunk:
                raise Malformed(f"the stream sent an error: {str(chunk['error'])[:200]}")
            model = str(chunk.get("model") or model)
            if isinstance(chunk.get("usage"), dict):
                usage = _usage(chunk["usage"])
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                text = (choice.get("delta") or {}).get("content")
                if text is not None and not isinstance(text, str):
                    raise Malformed("choices[0].delta.content is not text")
                if text:
                    yield TextDelta(text)
                if reason := choice.get("finish_reason"):
                    if reason == "content_filter":
                        raise self._filtered()
                    finish = str(reason)
        raise Malformed("the stream ended before [DONE]")

    def _filtered(self) -> ContentRejected:
        return ContentRejected(self.provider, f"{self.provider} filtered the reply")


def _usage(usage: dict[str, Any]) -> Usage:
    counts = {
        key: usage.get(key, 0) for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    }
    if not all(_count(v) for v in counts.values()):
        raise Malformed(f"usage token counts are not counts: {counts}")
    return Usage(**counts)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
