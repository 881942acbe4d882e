"""The sandbox calls back like the real providers do when a job it renders ends:
HeyGen's `avatar_video.success|fail` event signed with the endpoint's secret
(header `Signature`: hex HMAC-SHA256 of the body), Leonardo's
`image_generation.complete` with the webhook key as `Authorization: Bearer`.

A receiver is registered per provider (`POST /_sandbox/webhooks {"provider":
"heygen"|"leonardo", "url", "secret"}`, or `KLIK_SANDBOX_WEBHOOK_<PROVIDER>_URL` and
`_SECRET` at startup). Only jobs that render for a set time (`render=<ms>`) call
back, at that time, once; a delivery that fails is logged and not repeated (the
receiver's polling is the safety net, as with the real providers)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.jobs import Job, Phase

log = logging.getLogger(__name__)

PROVIDERS = ("heygen", "leonardo")


@dataclass(frozen=True)
class Receiver:
    url: str
    secret: str


def heygen_event(job: Job, phase: Phase) -> dict[str, Any]:
    ok = phase is Phase.DONE
    return {
        "event_type": "avatar_video.success" if ok else "avatar_video.fail",
        "event_data": {"video_id": job.id, "callback_id": job.callback_id or None},
    }


def leonardo_event(job: Job, phase: Phase) -> dict[str, Any]:
    return {
        "type": "image_generation.complete",
        "object": "generation",
        "timestamp": int(time.time()),
        "api_version": "v1",
        "data": {
            "object": {"id": job.id, "status": "COMPLETE" if phase is Phase.DONE else "FAILED"}
        },
    }


def signed(provider: str, secret: str, body: bytes) -> dict[str, str]:
    """The headers the provider authenticates its call with."""
    headers = {"content-type": "application/json", "user-agent": f"sandbox-{provider}"}
    if provider == "heygen":
        headers["signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    else:
        headers["authorization"] = f"Bearer {secret}"
    return headers


class Webhooks:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.receivers: dict[str, Receiver] = {}
        self.delivered: list[dict[str, Any]] = []  # what was called, oldest first
        self._tasks: set[asyncio.Task[None]] = set()
        for provider in PROVIDERS:
            prefix = f"KLIK_SANDBOX_WEBHOOK_{provider.upper()}_"
            url = (env or {}).get(prefix + "URL", "")
            if url:
                self.receivers[provider] = Receiver(url, (env or {}).get(prefix + "SECRET", ""))

    def schedule(self, provider: str, job: Job, phase_of: Any) -> None:
        """Call `provider`'s receiver back when the job's render time is up."""
        if job.render_ms is None or provider not in self.receivers:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(provider, job, phase_of))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, provider: str, job: Job, phase_of: Any) -> None:
        assert job.render_ms is not None
        # A little past the render's end by the wall clock: the loop's monotonic timer
        # may wake a hair early by time.time(), and the job would still read as
        # rendering (and so never call back).
        await asyncio.sleep(max(job.created_at + job.render_ms / 1000 - time.time(), 0) + 0.01)
        phase = phase_of(job)
        if phase is Phase.PENDING:
            return  # stuck: nothing to tell
        receiver = self.receivers.get(provider)
        if receiver is None:
            return
        event = heygen_event(job, phase) if provider == "heygen" else leonardo_event(job, phase)
        body = json.dumps(event, separators=(",", ":")).encode()
        entry: dict[str, Any] = {"provider": provider, "job_id": job.id, "status": None}
        self.delivered.append(entry)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(
                    receiver.url, content=body, headers=signed(provider, receiver.secret, body)
                )
            entry["status"] = reply.status_code
        except httpx.HTTPError as error:
            entry["status"] = type(error).__name__
            log.warning("webhook to %s failed: %s", receiver.url, error)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
