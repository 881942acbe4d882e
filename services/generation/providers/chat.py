"""What the TEXT/CHAT adapters share: one JSON POST for a reply (`complete`), the
same POST streamed as server-sent events (`stream`), both through ProviderHttp. An
adapter (openai_compat.py, anthropic.py) says how its API's body, reply and events
look."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar

from services.generation.providers.http import ProviderHttp
from services.generation.providers.sse import Event
from services.generation.providers.values import (
    TextDelta,
    TextRequest,
    TextResult,
    TextStreamItem,
)


def turns(request: TextRequest) -> list[dict[str, Any]]:
    """The history, oldest first, then the new user message, as both APIs take them."""
    history = [{"role": t.role, "content": t.content} for t in request.history]
    return [*history, {"role": "user", "content": request.prompt}]


class ChatApi:
    # Added to the body to ask for a stream.
    stream_fields: ClassVar[Mapping[str, Any]] = {"stream": True}

    def __init__(self, http: ProviderHttp, url: str, headers: dict[str, str]) -> None:
        self.http = http
        self.provider = http.provider
        self.url = url
        self.headers = headers

    async def complete(self, request: TextRequest, *, deadline: float | None = None) -> TextResult:
        """The whole reply; raises ProviderError (ContentRejected when the provider
        filtered it) after the retries ProviderHttp allows."""
        return await self.http.call(
            "POST",
            self.url,
            json=self._body(request),
            headers=self.headers,
            parse=lambda data: self._parse(data, request.model),
            repeatable=True,
            deadline=deadline,
        )

    def stream(
        self, request: TextRequest, *, deadline: float | None = None
    ) -> AsyncGenerator[TextStreamItem, None]:
        """The reply as it is produced: a TextDelta for each piece of text as it
        arrives, then exactly one TextEnd (usage None when the provider sent none).
        Retried like `complete` until the first item; after it a break raises
        StreamInterrupted. ContentRejected when the provider filters the reply, even
        mid-stream. `deadline` bounds the whole stream. Closing the generator
        (`aclose()`, `contextlib.aclosing`, or cancelling its consumer) closes the
        provider's stream at once."""
        return self.http.stream(
            "POST",
            self.url,
            json={**self._body(request), **self.stream_fields},
            headers={**self.headers, "accept": "text/event-stream"},
            decode=lambda events: self._decode(events, request.model),
            size=lambda item: len(item.text) if isinstance(item, TextDelta) else 0,
            deadline=deadline,
        )

    def _body(self, request: TextRequest) -> dict[str, Any]:
        raise NotImplementedError

    def _parse(self, data: Any, requested_model: str) -> TextResult:
        """The reply from the API's JSON body; Malformed when it is not one."""
        raise NotImplementedError

    def _decode(
        self, events: AsyncIterator[Event], requested_model: str
    ) -> AsyncGenerator[TextStreamItem, None]:
        """The stream's items from the API's events; Malformed for a bad event or a
        stream that ends before the API's end."""
        raise NotImplementedError
