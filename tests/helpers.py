"""Helpers shared by the test tiers. Tests synchronise by polling a condition with a
deadline (`wait_for`), never by sleeping a fixed time and hoping."""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, overload

from google.protobuf.message import Message
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from kit.bus import event_subject
from klik.events.v1.envelope_pb2 import Envelope

T = TypeVar("T")


@overload
async def wait_for(
    condition: Callable[[], Awaitable[T]],
    within: float = 10.0,
    *,
    interval: float = 0.02,
    message: str = "",
) -> T: ...
@overload
async def wait_for(
    condition: Callable[[], T],
    within: float = 10.0,
    *,
    interval: float = 0.02,
    message: str = "",
) -> T: ...
async def wait_for(
    condition: Callable[[], Any],
    within: float = 10.0,
    *,
    interval: float = 0.02,
    message: str = "",
) -> Any:
    """Poll `condition` (sync or async) until it returns something truthy; return it.
    Fails the test when `within` seconds pass first."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"condition not met within {within}s: {message or condition!r} "
                f"(last value: {result!r})"
            )
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    """A name no other test uses (streams are shared by the whole session)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def envelope(
    event_type: str,
    payload: Message,
    *,
    event_id: str | None = None,
    aggregate_id: str = "aggregate-1",
    request_id: str = "",
) -> Envelope:
    env = Envelope(
        id=event_id or str(uuid.uuid4()),
        type=event_type,
        aggregate_id=aggregate_id,
        request_id=request_id,
    )
    env.occurred_at.GetCurrentTime()
    env.payload.Pack(payload)
    return env


async def publish_envelope(
    js: JetStreamContext, env: Envelope, *, msg_id: str | None = None
) -> None:
    """Publish as the relay would; a different `msg_id` slips past broker dedup."""
    await js.publish(
        event_subject(env.type),
        env.SerializeToString(),
        headers={"Nats-Msg-Id": msg_id or env.id},
    )


async def stream_count(js: JetStreamContext, stream: str, subject: str) -> int:
    """How many messages `stream` holds on `subject` (wildcards allowed)."""
    info = await js.stream_info(stream, subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


async def stream_messages(
    js: JetStreamContext, stream: str, subject: str, *, within: float = 10.0
) -> list[Msg]:
    """Every message `stream` holds on `subject`, in stream order."""
    expected = await stream_count(js, stream, subject)
    if expected == 0:
        return []
    info = await js.add_consumer(
        stream,
        ConsumerConfig(
            filter_subject=subject,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,
        ),
    )
    sub = await js.pull_subscribe_bind(consumer=info.name, stream=stream)
    messages: list[Msg] = []
    try:
        deadline = time.monotonic() + within
        while len(messages) < expected:
            if time.monotonic() >= deadline:
                raise AssertionError(f"read {len(messages)} of {expected} messages on {subject}")
            try:
                messages.extend(await sub.fetch(min(256, expected - len(messages)), timeout=1))
            except TimeoutError:
                continue
    finally:
        await sub.unsubscribe()
        await js.delete_consumer(stream, info.name)
    return messages


ROOT = Path(__file__).resolve().parents[1]


async def run_module(module: str, *args: str, within: float = 30.0) -> tuple[int, str]:
    """Run `python -m module args...` from the repository root; return its exit code
    (negative: killed by that signal) and stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode not in (0, -signal.SIGKILL):
        print(stderr.decode(errors="replace"), file=sys.stderr)
    assert process.returncode is not None
    return process.returncode, stdout.decode()
