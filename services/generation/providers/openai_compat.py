"""TEXT and CHAT on an OpenAI-compatible chat completions endpoint: OpenAI itself,
or a local Ollama / vLLM server (their `/v1` base URL, usually no key).

    POST {base}/chat/completions  {model, messages, max_tokens?, temperature?}
      -> {choices: [{message: {content}, finish_reason}], usage: {prompt_tokens,
          completion_tokens, total_tokens}, model}

TEXT sends the prompt as one user message (the legacy /completions endpoint is gone
from current servers); CHAT sends the history before it. `usage` drives the price,
so a response without it is refused as malformed."""

from __future__ import annotations

from typing import Any

from services.generation.catalogue import Endpoint
from services.generation.domain import Usage
from services.generation.providers.errors import ContentRejected, Malformed
from services.generation.providers.http import ProviderHttp
from services.generation.providers.values import TextRequest, TextResult


class OpenAICompatible:
    def __init__(self, http: ProviderHttp, endpoint: Endpoint) -> None:
        self.http = http
        self.provider = http.provider
        self.url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self.headers = {"accept": "application/json"}
        if endpoint.api_key:
            self.headers["authorization"] = f"Bearer {endpoint.api_key}"

    async def complete(self, request: TextRequest, *, deadline: float | None = None) -> TextResult:
        messages = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages += [{"role": t.role, "content": t.content} for t in request.history]
        messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.max_tokens:
            # `max_tokens` is what Ollama, vLLM and OpenAI's chat models accept.
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        result = await self.http.call(
            "POST",
            self.url,
            json=body,
            headers=self.headers,
            parse=lambda data: self._parse(data, request.model),
            repeatable=True,
            deadline=deadline,
        )
        if result.finish_reason == "content_filter":
            raise ContentRejected(self.provider, f"{self.provider} filtered the reply")
        return result

    def _parse(self, data: Any, requested_model: str) -> TextResult:
        choice = data["choices"][0]
        content = choice["message"].get("content")
        if content is not None and not isinstance(content, str):
            raise Malformed("choices[0].message.content is not text")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            raise Malformed("no usage in the response")
        counts = {
            key: usage.get(key, 0) for key in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
        if not all(_count(v) for v in counts.values()):
            raise Malformed(f"usage token counts are not counts: {counts}")
        return TextResult(
            provider=self.provider,
            model=str(data.get("model") or requested_model),
            text=content or "",
            usage=Usage(**counts),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
