"""The ASGI app behind every transcoded route: match, limit, read, decode, call the
service, encode. Every failure leaves as API.md's error shape. A server-streaming
RPC's route answers with Server-Sent Events (gateway.transcoding.streaming)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import grpc
import prometheus_client
from google.protobuf.message import Message
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.admission import Admission
from gateway.auth import ACCESS_TOKEN_PARAMETER
from gateway.body import read_json_body, too_large
from gateway.errors import GatewayError, invalid_field, method_not_allowed, reason_statuses
from gateway.openstreams import TooManyStreams
from gateway.policy import client_address, is_public, rate_class
from gateway.settings import GatewaySettings
from gateway.sse import EventStreamResponse, keep_alive, too_many_streams
from gateway.transcoding.decode import decode_request
from gateway.transcoding.encode import encode_response
from gateway.transcoding.matcher import Matcher, MethodNotAllowed
from gateway.transcoding.metadata import outgoing_metadata
from gateway.transcoding.routes import MAX_PATH_PARAMETER_LENGTH, Route
from gateway.transcoding.status import rpc_failure
from gateway.transcoding.streamcall import RpcStream, RpcStreams, frames, started
from gateway.transcoding.streaming import fill_last_event_id
from kit.tokens import AccessClaims

UPSTREAM_ERRORS = prometheus_client.Counter(
    "klik_gateway_upstream_errors_total",
    "Failed upstream calls, by route template and gRPC status.",
    ["route", "status"],
)

Channels = dict[str, grpc.aio.Channel]


class Transcoder:
    """`channels` is the gateway's live map of upstream name -> channel (filled when
    the app starts)."""

    def __init__(
        self,
        routes: list[Route],
        channels: Channels,
        settings: GatewaySettings,
        admission: Admission,
    ) -> None:
        self.routes = routes
        self.matcher = Matcher(routes)
        self.channels = channels
        self.settings = settings
        self.admission = admission
        self.reason_statuses = reason_statuses(route.method for route in routes)
        self.streams = RpcStreams(settings.stream_max_per_user)
        self._stubs: dict[tuple[grpc.aio.Channel, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        request = Request(scope, receive)
        try:
            response = await self.handle(request)
        except GatewayError as error:
            response = error.response()
        except ClientDisconnect:
            return
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        path = raw_path(request.scope)
        found = self.matcher.match(request.method, path)
        if found is None:
            raise GatewayError("NOT_FOUND", f"no route for {request.url.path}", code="NOT_FOUND")
        if isinstance(found, MethodNotAllowed):
            raise method_not_allowed(request.method, request.url.path, found.allow)
        route = found.route
        for name, value in found.params.items():
            limit = route.path_limits.get(name, MAX_PATH_PARAMETER_LENGTH)
            if len(value) > limit:
                raise invalid_field(f"{name} is longer than {limit} characters")
        request.scope["route"] = route  # metrics label the request with its template
        route_class = rate_class(route)
        streaming = route.stream is not None
        # A browser's EventSource cannot send Authorization: streams take ?access_token=.
        claims = await self.admission.admit(
            request, route_class, public=is_public(route), query_token=streaming
        )
        limit = self.settings.max_body_bytes
        if route.raw_body:
            body = await read_raw_body(request, limit)
        else:
            body = await read_json_body(request, limit) if route.body else b""
        query = request.query_params.multi_items()
        if streaming:  # the token parameter is the gateway's, no field of the request
            query = [(key, value) for key, value in query if key != ACCESS_TOKEN_PARAMETER]
        message = decode_request(
            route, found.params, query, body, request.headers.get("content-type", "")
        )
        metadata = outgoing_metadata(request, route.forward_headers, query_token=streaming)
        if streaming:
            return await self.open_stream(request, route, message, metadata, claims)
        timeout = self.settings.timeout(route_class)
        reply = await self.call(route, message, metadata, timeout)
        if route.redirect_field and (location := getattr(reply, route.redirect_field)):
            return redirect(location)
        return Response(encode_response(route, reply), media_type="application/json")

    async def open_stream(
        self,
        request: Request,
        route: Route,
        message: Message,
        metadata: tuple[tuple[str, str], ...],
        claims: AccessClaims | None,
    ) -> Response:
        """Call a server-streaming RPC; its events once it has started, or the error
        response when it fails first (gateway.transcoding.streaming)."""
        assert route.stream is not None
        fill_last_event_id(route.stream, message, request.headers.get("last-event-id", ""))
        key = claims.subject if claims is not None else "addr:" + client_address(request)
        limit = self.settings.stream_max_seconds
        call = self.stub(route)(message, metadata=metadata, timeout=limit)
        stream = RpcStream(route, key, call)
        try:
            self.streams.add(stream)
        except TooManyStreams as refused:
            call.cancel()
            raise too_many_streams(refused.limit, "open streams") from None
        try:
            read = await started(call, request.receive)
        except BaseException as error:
            self.streams.close(stream)  # cancels the call, frees the slot
            if isinstance(error, grpc.aio.AioRpcError):
                raise self.failure(route, error) from None
            raise
        until = claims.expires_at if claims is not None else time.time() + limit
        return EventStreamResponse(
            keep_alive(frames(stream, read, self.failure), self.settings.events, until),
            on_close=lambda: self.streams.close(stream),
        )

    def stub(self, route: Route) -> Any:
        """The callable of `route`'s RPC on its upstream's channel (unary-stream for a
        streaming route)."""
        channel = self.channels.get(route.upstream)
        if channel is None:
            raise GatewayError("UNAVAILABLE", f"the {route.upstream} service is not configured")
        stub = self._stubs.get((channel, route.grpc_path))
        if stub is None:
            kind = channel.unary_unary if route.stream is None else channel.unary_stream
            stub = kind(
                route.grpc_path,
                request_serializer=route.request_class.SerializeToString,
                response_deserializer=route.response_class.FromString,
            )
            self._stubs[(channel, route.grpc_path)] = stub
        return stub

    def failure(self, route: Route, error: grpc.aio.AioRpcError) -> GatewayError:
        """A failed call in API.md's error shape, counted."""
        UPSTREAM_ERRORS.labels(route.path, error.code().name).inc()
        return rpc_failure(error, route.upstream, self.reason_statuses)

    async def call(
        self,
        route: Route,
        message: Message,
        metadata: tuple[tuple[str, str], ...],
        seconds: float,
    ) -> Message:
        """Call `route`'s RPC with a deadline `seconds` from now."""
        try:
            reply: Message = await self.stub(route)(message, metadata=metadata, timeout=seconds)
        except grpc.aio.AioRpcError as error:
            raise self.failure(route, error) from None
        return reply


def redirect(location: str) -> Response:
    """A redirect route's answer ((klik.options.v1.redirect_field)): 302 to where
    the service said, never cached, telling the next page nothing of this URL."""
    return Response(
        status_code=302,
        headers={
            "location": location,
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
        },
    )


async def read_raw_body(request: Request, limit: int) -> bytes:
    """A raw-body route's body exactly as sent, whatever its type; at most `limit`
    bytes (413 beyond, counted as it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


def raw_path(scope: Scope) -> str:
    """The path as the client sent it (percent-encoding intact)."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.decode("latin-1").split("?", 1)[0]
    return quote(str(scope["path"]), safe="/:@!$&'()*+,;=-._~")
