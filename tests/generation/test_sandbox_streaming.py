"""The sandbox's streamed replies over real HTTP: OpenAI's chunks and Anthropic's
events, token counts that agree with the non-streamed usage, the stream faults
(rate, drop, stall, no usage) and its record of how each stream ended."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from sandbox import content
from tests.generation.conftest import SandboxServer
from tests.helpers import wait_for

PROMPT = "Write a haiku about the sea"


def chat_body(prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {"model": "sandbox-text", "messages": [{"role": "user", "content": prompt}], **extra}


def streamed(prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return chat_body(prompt, stream=True, stream_options={"include_usage": True}, **extra)


async def events(response: httpx.Response) -> list[tuple[str, str]]:
    """The (event, data) pairs of a server-sent event stream, in order."""
    found, name, data = [], "", []
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif not line and data:
            found.append((name, "\n".join(data)))
            name, data = "", []
    return found


async def chunks(sandbox: SandboxServer, body: dict[str, Any]) -> list[Any]:
    """The data of every OpenAI chunk, `[DONE]` as the string it is."""
    async with sandbox.http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [
            data if data == "[DONE]" else json.loads(data) for _, data in await events(response)
        ]


async def test_openai_stream_has_openais_chunks_and_agrees_with_the_plain_reply(
    sandbox: SandboxServer,
) -> None:
    plain = (await sandbox.http.post("/v1/chat/completions", json=chat_body())).json()
    got = await chunks(sandbox, streamed())
    first, *tokens, usage, done = got
    assert done == "[DONE]"
    assert first["object"] == "chat.completion.chunk"
    assert {"id", "created", "model", "system_fingerprint"} <= first.keys()
    assert first["id"] == plain["id"] and first["model"] == "sandbox-text"
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    text = "".join(t["choices"][0]["delta"]["content"] for t in tokens)
    assert text == plain["choices"][0]["message"]["content"]
    assert len(tokens) == content.tokens(text) == plain["usage"]["completion_tokens"]
    assert [t["choices"][0]["finish_reason"] for t in tokens] == [None] * (len(tokens) - 1) + [
        "stop"
    ]
    assert usage["choices"] == [] and usage["usage"] == plain["usage"]
    assert all(t["usage"] is None for t in [first, *tokens])


async def test_openai_stream_sends_usage_only_when_asked_and_not_when_incomplete(
    sandbox: SandboxServer,
) -> None:
    unasked = await chunks(sandbox, chat_body(stream=True))
    assert unasked[-1] == "[DONE]"
    assert all("usage" not in c for c in unasked[:-1])
    assert unasked[-2]["choices"][0]["finish_reason"] == "stop"

    incomplete = await chunks(sandbox, streamed(PROMPT + " [[fault:incomplete]]"))
    assert incomplete[-1] == "[DONE]"
    assert all(c["choices"] for c in incomplete[:-1]), "no chunk without choices: no usage"
    assert incomplete[-2]["choices"][0]["finish_reason"] == "stop"


async def test_openai_stream_finish_reasons(sandbox: SandboxServer) -> None:
    cut = await chunks(sandbox, streamed(max_tokens=3))
    tokens = [c for c in cut[1:-1] if c["choices"]]
    assert len(tokens) == 3 and tokens[-1]["choices"][0]["finish_reason"] == "length"
    assert cut[-2]["usage"]["completion_tokens"] == 3

    filtered = await chunks(sandbox, streamed("[[fault:filtered]]"))
    finish = [c["choices"][0] for c in filtered[1:-1] if c["choices"]]
    assert finish == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "content_filter"}
    ]


async def test_rate_paces_the_tokens(sandbox: SandboxServer) -> None:
    started = time.monotonic()
    got = await chunks(sandbox, streamed(PROMPT + " [[fault:rate=40]]"))
    elapsed = time.monotonic() - started
    tokens = len(got) - 3  # role, usage, [DONE]
    assert tokens >= 10
    assert elapsed >= (tokens - 1) / 40
    [record] = await sandbox.streams()
    assert (record["ended"], record["tokens"]) == ("completed", tokens)


async def test_drop_cuts_the_connection_after_n_tokens(sandbox: SandboxServer) -> None:
    seen: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with sandbox.http.stream(
            "POST", "/v1/chat/completions", json=streamed(PROMPT + " [[fault:drop=3]]")
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen.append(line)
    payloads = [json.loads(line[len("data: ") :]) for line in seen]
    assert len(payloads) == 1 + 3, "the role chunk, then three tokens"
    assert all(p["choices"][0]["finish_reason"] is None for p in payloads)
    [record] = await sandbox.streams()
    assert (record["ended"], record["tokens"]) == ("dropped", 3)


async def test_stall_sends_nothing_more_until_the_client_leaves(sandbox: SandboxServer) -> None:
    async with sandbox.http.stream(
        "POST",
        "/v1/chat/completions",
        json=streamed(PROMPT + " [[fault:stall=2]]"),
        timeout=httpx.Timeout(10, read=0.3),
    ) as response:
        lines = response.aiter_lines()
        data: list[str] = []
        while len(data) < 3:  # the role chunk and two tokens
            line = await anext(lines)
            if line.startswith("data: "):
                data.append(line)
        [record] = await wait_for(
            lambda: _streams_where(sandbox, stalled=True), message="the stream stalls"
        )
        assert (record["tokens"], record["ended"]) == (2, None)
        with pytest.raises(httpx.ReadTimeout):
            while not await anext(lines):  # the blank line that ended the last event
                pass
    [record] = await wait_for(lambda: _streams_where(sandbox, ended="stalled"))
    assert record["tokens"] == 2


async def test_the_sandbox_sees_a_client_close_the_stream(sandbox: SandboxServer) -> None:
    async with sandbox.http.stream(
        "POST", "/v1/chat/completions", json=streamed(PROMPT + " [[fault:rate=20]]")
    ) as response:
        tokens = 0
        async for line in response.aiter_lines():
            if line.startswith("data: ") and '"content":"' in line and '""' not in line:
                tokens += 1
                if tokens == 2:
                    break
    [record] = await wait_for(lambda: _streams_where(sandbox, ended="client_closed"))
    # Paced at 20 a second, the sandbox wrote at most a token more before it saw it.
    assert 2 <= record["tokens"] <= 3
    assert record["model"] == "sandbox-text" and record["id"].startswith("chatcmpl-")


async def test_faults_before_the_first_byte_still_apply_to_streams(
    sandbox: SandboxServer,
) -> None:
    body = streamed(PROMPT + " [[fault:503x1]]")
    refused = await sandbox.http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    got = await chunks(sandbox, body)
    assert got[-1] == "[DONE]"
    assert await sandbox.streams() != [] and len(await sandbox.streams()) == 1


async def _streams_where(sandbox: SandboxServer, **want: Any) -> list[dict[str, Any]]:
    streams = await sandbox.streams()
    return [s for s in streams if all(s[k] == v for k, v in want.items())]


ANTHROPIC_HEADERS = {"x-api-key": "sandbox", "anthropic-version": "2023-06-01"}


def message_body(prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {
        "model": "sandbox-text",
        "max_tokens": 256,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        **extra,
    }


async def anthropic_events(sandbox: SandboxServer, body: dict[str, Any]) -> list[Any]:
    async with sandbox.http.stream(
        "POST", "/v1/messages", json=body, headers=ANTHROPIC_HEADERS
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        found = await events(response)
    for name, data in found:
        assert json.loads(data)["type"] == name, "each event's name is its data's type"
    return [json.loads(data) for _, data in found]


async def test_anthropic_message_has_the_openai_reply_and_anthropics_shape(
    sandbox: SandboxServer,
) -> None:
    reply = await sandbox.http.post("/v1/messages", json=message_body(), headers=ANTHROPIC_HEADERS)
    message = reply.json()
    plain = (await sandbox.http.post("/v1/chat/completions", json=chat_body())).json()
    text = plain["choices"][0]["message"]["content"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["id"].startswith("msg_") and message["model"] == "sandbox-text"
    assert message["content"] == [{"type": "text", "text": text}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {"input_tokens": 2 + 6, "output_tokens": content.tokens(text)}

    cut = await sandbox.http.post(
        "/v1/messages", json=message_body(max_tokens=2), headers=ANTHROPIC_HEADERS
    )
    assert cut.json()["stop_reason"] == "max_tokens"
    assert cut.json()["usage"]["output_tokens"] == 2


async def test_anthropic_refuses_what_anthropic_refuses(sandbox: SandboxServer) -> None:
    body = message_body()
    del body["max_tokens"]
    reply = await sandbox.http.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in reply.json()["error"]["message"]
    unversioned = await sandbox.http.post("/v1/messages", json=message_body())
    assert unversioned.status_code == 400


async def test_anthropic_stream_has_anthropics_events(sandbox: SandboxServer) -> None:
    plain = (
        await sandbox.http.post("/v1/messages", json=message_body(), headers=ANTHROPIC_HEADERS)
    ).json()
    got = await anthropic_events(sandbox, message_body(stream=True))
    kinds = [e["type"] for e in got]
    deltas = [e for e in got if e["type"] == "content_block_delta"]
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * len(deltas),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = got[0]["message"]
    assert (start["id"], start["content"], start["stop_reason"]) == (plain["id"], [], None)
    assert start["usage"]["input_tokens"] == plain["usage"]["input_tokens"]
    assert got[1]["content_block"] == {"type": "text", "text": ""}
    assert all(d["delta"]["type"] == "text_delta" for d in deltas)
    assert "".join(d["delta"]["text"] for d in deltas) == plain["content"][0]["text"]
    assert len(deltas) == plain["usage"]["output_tokens"]
    assert got[-2]["delta"]["stop_reason"] == "end_turn"
    assert got[-2]["usage"] == {"output_tokens": plain["usage"]["output_tokens"]}

    incomplete = await anthropic_events(
        sandbox, message_body(PROMPT + " [[fault:incomplete]]", stream=True)
    )
    assert "usage" not in incomplete[0]["message"] and "usage" not in incomplete[-2]


async def test_anthropic_stream_drop_is_recorded(sandbox: SandboxServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await anthropic_events(sandbox, message_body(PROMPT + " [[fault:drop=4]]", stream=True))
    [record] = await sandbox.streams("/v1/messages")
    assert (record["ended"], record["tokens"]) == ("dropped", 4)
    assert record["id"].startswith("msg_")
