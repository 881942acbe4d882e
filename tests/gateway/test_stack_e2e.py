"""End to end through every real service (`python -m stack`): a user signs up,
watches their own event stream, runs an IMAGE generation, sees the job's transitions
and wallet changes arrive in order over SSE, and downloads the result from the URL the
job gives — the whole path a web client takes."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.stack import RunningStack
from tests.gateway.test_events import EventReader, Sse
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


async def test_a_generation_streams_its_transitions_and_its_file_downloads(
    real_stack: RunningStack,
) -> None:
    token = await asyncio.to_thread(real_stack.user, f"e2e-{uuid.uuid4().hex[:8]}@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=real_stack.url, headers=bearer, timeout=httpx.Timeout(10, read=30)
    ) as client:
        wallet = (await client.get("/v1/wallet")).json()
        user_id = wallet["user_id"]
        async with client.stream("GET", "/v1/events") as response:
            assert response.status_code == 200
            stream = EventReader(response)
            created = await client.post(
                "/v1/generations",
                json={"kind": "IMAGE", "prompt": "a red square", "idempotency_key": "e2e-1"},
            )
            assert created.status_code == 200, created.text
            job_id = created.json()["id"]
            events: list[Sse] = []
            async with asyncio.timeout(60):
                while not any(e.event == "generation.job.succeeded" for e in events):
                    event = await stream.next()
                    assert event.event != "generation.job.failed", event.data
                    events.append(event)
                # The capture that follows success.
                while [e.event for e in events].count("wallet.changed") < 2:
                    events.append(await stream.next())
        assert all(e.data["user_id"] == user_id for e in events)
        assert [e.id for e in events] == sorted(e.id for e in events)
        transitions = [
            e.event.removeprefix("generation.job.")
            for e in events
            if e.event.startswith("generation.job.") and e.data["payload"]["job"]["id"] == job_id
        ]
        assert transitions == ["queued", "running", "succeeded"]

        job = (await client.get(f"/v1/generations/{job_id}")).json()
        assert job["status"] == "SUCCEEDED"
        after = await wait_for(
            lambda: _balance_changed(client, wallet["balance"]), message="charge visible"
        )
        assert after is not None
        assert int(after["balance"]) == int(wallet["balance"]) - int(job["cost_credits"])

        url = job["result"]["asset_url"]
        assert url.startswith(f"{real_stack.url}/v1/files/"), url
        async with httpx.AsyncClient() as browser:  # an <img> tag: no token
            image = await browser.get(url)
            assert image.status_code == 200
            assert image.headers["content-type"] == job["result"]["mime_type"] == "image/png"
            assert image.content.startswith(b"\x89PNG")
            assert image.headers["cache-control"] == "public, max-age=31536000, immutable"
            part = await browser.get(url, headers={"Range": "bytes=0-7"})
            assert part.status_code == 206 and part.content == image.content[:8]


async def _balance_changed(client: httpx.AsyncClient, before: str) -> dict[str, str] | None:
    wallet: dict[str, str] = (await client.get("/v1/wallet")).json()
    return wallet if wallet["balance"] != before and wallet["held"] == "0" else None


async def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """Every event of a text/event-stream until it ends: its fields, data parsed."""
    reader, events = EventReader(response), []
    while (fields := await reader.fields()) is not None:
        events.append({**fields, "data": json.loads(fields["data"])})
    return events


async def test_a_chat_reply_streams_over_sse_and_a_dropped_stream_resumes(
    real_stack: RunningStack,
) -> None:
    token = await asyncio.to_thread(real_stack.user, f"chat-{uuid.uuid4().hex[:8]}@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=real_stack.url, headers=bearer, timeout=httpx.Timeout(10, read=30)
    ) as client:
        chat = (await client.post("/v1/chats", json={"title": "streams"})).json()
        question = "tell me about the sea [[fault:rate=8]]"
        async with client.stream(
            "POST",
            f"/v1/chats/{chat['id']}/messages:stream",
            json={"content": question, "idempotency_key": "q1"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = EventReader(response)
            sent = await reader.fields()
            assert sent is not None and sent["event"] == "sent"
            job_id = json.loads(sent["data"])["job_id"]
            # The first delta arrives while the provider is still writing the rest
            # (after a snapshot of the text so far, if the reply had begun already).
            first, text = None, ""
            while first is None or first["event"] != "delta":
                first = await reader.fields()
                assert first is not None
                if first["event"] in ("snapshot", "delta"):
                    text += json.loads(first["data"])["text"]
            running = (await client.get(f"/v1/generations/{job_id}")).json()
            assert running["status"] == "RUNNING"
            resume_from = first["id"]
            # ...and the connection drops here.
        assert resume_from == str(len(text))
        async with client.stream(
            "GET", f"/v1/generations/{job_id}:watch", headers={"Last-Event-ID": resume_from}
        ) as response:
            assert response.status_code == 200
            events = await sse_events(response)
        for event in events:
            if event["event"] == "delta":
                assert int(event["data"]["offset"]) == len(text), "no gap, no repeat"
                text += event["data"]["text"]
                assert event["id"] == str(len(text))
        final = events[-1]
        assert final["event"] == "job" and final["data"]["status"] == "SUCCEEDED"
        assert final["data"]["result"]["text"] == text
        assert int(final["data"]["cost_credits"]) > 0
        # What the next question would hold, asked with a GET.
        estimate = await client.get(
            "/v1/generations:estimate",
            params={"kind": "CHAT", "prompt": "and then?", "options.max_tokens": "50"},
        )
        assert estimate.status_code == 200, estimate.text
        assert int(estimate.json()["estimate_credits"]) > 0
        # A job nobody owns is a plain 404 before the stream starts, not a 200.
        missing = await client.get(f"/v1/generations/{uuid.uuid4()}:watch")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "JOB_NOT_FOUND"


async def test_a_generation_created_and_streamed_in_one_request(
    real_stack: RunningStack,
) -> None:
    token = await asyncio.to_thread(real_stack.user, f"one-{uuid.uuid4().hex[:8]}@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    body = {"kind": "TEXT", "prompt": "a poem [[fault:rate=20]]", "idempotency_key": "one"}
    async with httpx.AsyncClient(
        base_url=real_stack.url, headers=bearer, timeout=httpx.Timeout(10, read=30)
    ) as client:
        async with client.stream("POST", "/v1/generations:stream", json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = await sse_events(response)
        assert events[0]["event"] == "job"
        assert events[0]["data"]["status"] in ("QUEUED", "RUNNING")
        job_id = events[0]["data"]["id"]
        text = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
        final = events[-1]
        assert final["event"] == "job" and final["data"]["id"] == job_id
        assert final["data"]["status"] == "SUCCEEDED" and final["data"]["result"]["text"] == text
        # The same key is the same job by the plain route (no second hold).
        again = await client.post("/v1/generations", json=body)
        assert again.status_code == 200 and again.json()["id"] == job_id
        # Refusals are plain HTTP errors before the stream starts.
        broke = await client.post(
            "/v1/generations:stream",
            json={"kind": "TEXT", "prompt": "x", "options": {"max_tokens": 128000}},
        )
        assert broke.status_code == 402, broke.text
        assert broke.json()["error"]["code"] == "INSUFFICIENT_CREDITS"
        malformed = await client.post(
            "/v1/generations:stream",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"]["code"] == "MALFORMED_JSON"


async def test_the_sandbox_providers_call_back_through_the_gateway(
    real_stack: RunningStack,
) -> None:
    token = await asyncio.to_thread(real_stack.user, f"hook-{uuid.uuid4().hex[:8]}@example.com")
    sandbox = f"http://127.0.0.1:{real_stack.env['KLIK_SANDBOX_PORT']}"
    async with httpx.AsyncClient(
        base_url=real_stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        created = await client.post(
            "/v1/generations", json={"kind": "IMAGE", "prompt": "a kite [[fault:render=300]]"}
        )
        assert created.status_code == 200, created.text
        job_id = created.json()["id"]

        async def called_back() -> list[dict[str, Any]] | None:
            hooks = (await client.get(f"{sandbox}/_sandbox/webhooks")).json()["delivered"]
            # `status` is set once the gateway answered the call.
            return [h for h in hooks if h["provider"] == "leonardo" and h["status"]] or None

        delivered = await wait_for(called_back, 30, message="the sandbox called back")
        assert delivered is not None and delivered[-1]["status"] == 200, delivered

        async def succeeded() -> bool:
            job = (await client.get(f"/v1/generations/{job_id}")).json()
            return bool(job["status"] == "SUCCEEDED")

        await wait_for(succeeded, 30, message="the image job succeeded")
