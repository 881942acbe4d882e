"""How every imitated request is served, whichever system it imitates: the
sandbox's state (its request log, global faults, provider-side jobs and the record
of its streams) and
`Sandbox.serve`, which records a request, applies its faults (faults.py) and else
lets the system produce its answer; plus what the systems' handlers share (a refusal
with the system's own error body, the JSON body, bounded integer fields)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.faults import Fault, FaultBook, FaultSpecError, Rule, combined, markers, parse
from sandbox.jobs import Job, Jobs, Outcome
from sandbox.streaming import StreamLog
from sandbox.webhooks import Webhooks

FAULT_HEADER = "x-sandbox-fault"
HANG_LIMIT_SECONDS = 3600.0

# A system's answer to a request that got no status, hang or malformed fault; the
# fault passed in holds what is left for it to honour (filtered, incomplete, ...).
Produce = Callable[[Fault], Awaitable[Response]]


class BadRequest(Exception):
    """A request the real system would refuse (400), with its error body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.body = body


@dataclass
class GlobalFault:
    id: int
    spec: str
    path: str
    fault: Fault

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "fault": self.spec, "path": self.path}


class Sandbox:
    def __init__(self, polls: int = 2) -> None:
        self.polls = polls  # polls a job needs to complete, unless a fault says otherwise
        self.book = FaultBook()
        self.faults: list[GlobalFault] = []
        self.requests: list[dict[str, Any]] = []
        self.jobs = Jobs()
        self.streams = StreamLog()
        self.webhooks = Webhooks(os.environ)
        self.init_images: dict[str, bytes] = {}  # Leonardo's uploaded init images, by id
        self._ids = itertools.count(1)

    async def serve(self, request: Request, body: bytes, prompt: str, produce: Produce) -> Response:
        """Record the request, apply its faults, else answer with `produce`."""
        entry: dict[str, Any] = {
            "seq": len(self.requests) + 1,
            "at": time.time(),
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "status": None,
            "fault": "",
            # What the client asked for, when it sent JSON (e.g. an LLM request's
            # messages, model and temperature); None otherwise.
            "json": _json_or_none(body),
        }
        self.requests.append(entry)
        try:
            rules = self._rules(request, body, prompt)
        except FaultSpecError as error:
            entry["status"] = 400
            return JSONResponse({"error": {"message": str(error), "type": "sandbox"}}, 400)
        extra = combined(rules)
        if extra.latency_ms:
            entry["fault"] = f"latency={extra.latency_ms}"
            await asyncio.sleep(extra.latency_ms / 1000)
        status_fault = self.book.status(rules)
        if status_fault is not None:
            assert status_fault.status is not None
            entry["fault"] = str(status_fault.status)
            response = _fault_response(status_fault.status, status_fault.retry_after)
        elif extra.hang:
            entry["fault"] = "hang"
            await _hang(request)
            return Response(status_code=504)  # to nobody: the client is gone
        elif extra.malformed:
            entry["fault"] = "malformed"
            response = Response(b'{"choices": [{"message": ', media_type="application/json")
        else:
            try:
                response = await produce(extra)
            except BadRequest as error:
                response = JSONResponse(error.body, 400)
            if extra.lost and response.status_code < 400:
                entry["fault"] = "lost"
                await _hang(request)
                return Response(status_code=504)  # to nobody: the client is gone
        entry["status"] = response.status_code
        return response

    async def refuse(self, request: Request, error: BadRequest) -> Response:
        """Serve a request the system refuses: recorded, header faults still apply
        (counted as a bodiless request), else a 400 with the system's error body."""

        async def produce(fault: Fault) -> Response:
            raise error

        return await self.serve(request, b"", "", produce)

    def _rules(self, request: Request, body: bytes, prompt: str) -> list[Rule]:
        """Header first, then prompt markers, then global faults."""
        fingerprint = (
            request.method,
            request.url.path,
            request.url.query,
            hashlib.sha256(body).hexdigest(),
        )
        rules = []
        if header := request.headers.get(FAULT_HEADER):
            rules.append(Rule(parse(header), ("request", *fingerprint, header)))
        for spec in markers(prompt):
            rules.append(Rule(parse(spec), ("request", *fingerprint, spec)))
        for fault in self.faults:
            if request.url.path.startswith(fault.path):
                rules.append(Rule(fault.fault, ("global", str(fault.id))))
        return rules

    def add_fault(self, spec: str, path: str) -> GlobalFault:
        fault = GlobalFault(next(self._ids), spec, path, parse(spec))
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()
        self.book.forget("global")

    def new_job(self, fault: Fault, provider: str, **fields: Any) -> Job:
        """A provider-side job; `provider`'s webhook is called when it ends, if it
        renders for a set time and a receiver is registered."""
        outcome = Outcome.FAIL if fault.fail else Outcome.STUCK if fault.stuck else Outcome.COMPLETE
        job = self.jobs.add(
            Job(
                polls_needed=fault.polls or self.polls,
                outcome=outcome,
                incomplete=fault.incomplete,
                render_ms=fault.render_ms,
                **fields,
            )
        )
        self.webhooks.schedule(provider, job, self.jobs.phase)
        return job


def of(request: Request) -> Sandbox:
    """The sandbox serving `request` (app.py keeps it in the app's state)."""
    state = request.app.state.sandbox
    assert isinstance(state, Sandbox)
    return state


def _fault_response(status: int, retry_after: str) -> Response:
    headers = {}
    if status in (429, 503):
        headers["retry-after"] = (
            formatdate(time.time() + float(retry_after[1:]), usegmt=True)
            if retry_after.startswith("@")
            else retry_after
        )
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    return JSONResponse(
        {"error": {"message": f"sandbox fault: {status}", "type": kind, "code": "sandbox_fault"}},
        status,
        headers=headers,
    )


async def _hang(request: Request) -> None:
    """Answer nothing until the client gives up (or an hour passes)."""

    async def disconnect() -> None:
        # The body was read already: the next ASGI message is the disconnect.
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnect(), HANG_LIMIT_SECONDS)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def read_json(request: Request) -> tuple[bytes, dict[str, Any]]:
    """The raw body and its JSON object; a 400 (generic body) when it is not one."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadRequest({"error": {"message": "the body must be a JSON object"}})
    return raw, data


def int_field(
    data: dict[str, Any],
    key: str,
    default: int,
    low: int,
    high: int,
    error: Callable[[str], dict[str, Any]],
    *,
    text: bool = False,
) -> int:
    """`data[key]` (or `default`), an integer in low..high; else a 400 whose body
    `error` writes in the system's shape. `text`: the value is a query parameter's
    digits."""
    value = data.get(key, default)
    if text and isinstance(value, str):
        value = int(value) if value.isdigit() else None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(error(f"{key} must be an integer in {low}..{high}"))
    return value


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body[:1] in (b"{", b"[") else None
    except ValueError:
        return None
