"""One server-streaming call behind an SSE response (the rules: gateway.transcoding.
streaming): waiting for the stream to start, the events, the end, and the open
streams of each user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

import grpc
import prometheus_client
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from gateway.errors import GatewayError
from gateway.openstreams import OpenStreams
from gateway.sse import gateway_error_event
from gateway.transcoding.routes import Route
from gateway.transcoding.streaming import encode_event

OPEN_RPC_STREAMS = prometheus_client.Gauge(
    "klik_gateway_rpc_streams",
    "Open streaming RPC routes on this replica, by route template.",
    ["route"],
)

Failure = Callable[[Route, grpc.aio.AioRpcError], GatewayError]


class RpcStream:
    """An open streaming call; `end` stops it with a final `event: error`."""

    def __init__(self, route: Route, key: str, call: grpc.aio.UnaryStreamCall[Any, Any]) -> None:
        self.route = route
        self.key = key
        self.call = call
        self.ended: asyncio.Future[GatewayError] = asyncio.get_running_loop().create_future()

    def end(self, why: GatewayError) -> None:
        if not self.ended.done():
            self.ended.set_result(why)


class RpcStreams:
    """The open streams, at most `max_per_user` per user (or client address)."""

    def __init__(self, max_per_user: int) -> None:
        self.open: OpenStreams[RpcStream] = OpenStreams(max_per_user)

    def add(self, stream: RpcStream) -> None:
        """Raises gateway.openstreams.TooManyStreams."""
        self.open.add(stream.key, stream)
        OPEN_RPC_STREAMS.labels(stream.route.path).inc()

    def close(self, stream: RpcStream) -> None:
        """However the response ended: the call is cancelled (a no-op once it is
        over) and its slot freed."""
        stream.call.cancel()
        if self.open.remove(stream.key, stream):
            OPEN_RPC_STREAMS.labels(stream.route.path).dec()

    def close_all(self) -> None:
        """The gateway is stopping: every stream ends, telling its client so."""
        for stream in self.open:
            stream.end(GatewayError("UNAVAILABLE", "the gateway is stopping: reconnect"))

    def revoke(self, user_id: str) -> None:
        """`user_id` was deleted: their streams end as /v1/events' do."""
        for stream in self.open.of(user_id):
            stream.end(
                GatewayError(
                    "UNAUTHENTICATED", "access token is no longer valid", code="INVALID_TOKEN"
                )
            )


async def started(call: grpc.aio.UnaryStreamCall[Any, Any], receive: Receive) -> asyncio.Task[Any]:
    """Wait until the stream has started: its first message or failure, or initial
    metadata with an entry. Returns the task reading the first message (done, or
    still waiting when the metadata came first). Raises the call's AioRpcError when
    it failed first, ClientDisconnect when the client left first."""
    read: asyncio.Task[Any] = asyncio.ensure_future(call.read())
    read.add_done_callback(_retrieved)
    metadata = asyncio.ensure_future(call.initial_metadata())
    gone = asyncio.ensure_future(_disconnected(receive))
    waiting: set[asyncio.Future[Any]] = {read, metadata, gone}
    try:
        while True:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if gone in done:
                raise ClientDisconnect
            if read in done:
                read.result()  # a failure raises here: the ordinary error response
                return read
            if metadata in done:
                waiting.discard(metadata)
                # A failure before any message comes as a trailers-only response,
                # whose initial metadata is empty: only an entry means "started".
                if metadata.result():
                    return read
    except BaseException:
        read.cancel()
        raise
    finally:
        gone.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A read nobody awaits any more (the stream ended) logs no "never retrieved"."""
    if not task.cancelled():
        task.exception()


async def frames(
    stream: RpcStream, read: asyncio.Task[Any], failure: Failure
) -> AsyncGenerator[bytes, None]:
    """The stream's events from `read` (the first message's read) on; a failure ends
    it with `event: error`, and so does `stream.end`."""
    shape = stream.route.stream
    assert shape is not None
    try:
        while True:
            await asyncio.wait({read, stream.ended}, return_when=asyncio.FIRST_COMPLETED)
            if stream.ended.done():
                yield gateway_error_event(stream.ended.result())
                return
            message = read.result()
            if message is grpc.aio.EOF:
                return
            frame = encode_event(shape, message)
            if frame is not None:
                yield frame
            read = asyncio.ensure_future(stream.call.read())
            read.add_done_callback(_retrieved)
    except grpc.aio.AioRpcError as error:
        yield gateway_error_event(failure(stream.route, error))
    finally:
        stream.call.cancel()
