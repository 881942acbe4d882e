"""ASGI middleware: request ids and per-route metrics. Pure ASGI (not
BaseHTTPMiddleware) so the request id contextvar reaches the endpoint and streaming
responses are not buffered."""

from __future__ import annotations

import time

import prometheus_client
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import headers_too_large
from kit.context import accept_request_id, request_id_var

REQUEST_ID_HEADER = "x-request-id"
# A bearer token is well under 1 KiB; this keeps the metadata the gateway forwards
# (authorization, request id, client address) within gRPC's 8 KiB soft limit.
MAX_AUTHORIZATION_BYTES = 4096

REQUESTS = prometheus_client.Counter(
    "klik_gateway_requests_total",
    "HTTP requests, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = prometheus_client.Histogram(
    "klik_gateway_request_seconds",
    "HTTP request latency, by route template and method.",
    ["route", "method"],
)


class RequestContext:
    """Take `X-Request-ID` (or make one), expose it to the app, echo it back, and
    count the request under its route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"")
        request_id = accept_request_id(incoming.decode("latin-1"))
        request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            REQUESTS.labels(template, scope["method"], str(status)).inc()
            LATENCY.labels(template, scope["method"]).observe(time.perf_counter() - started)


class HeaderLimits:
    """431 for a request with more than `max_count` headers, more than `max_bytes` of
    them (names and values), or an `Authorization` over `max_authorization` bytes —
    before any of it is read, counted or passed on as gRPC metadata (whose size
    limit a service would otherwise answer with a transport error)."""

    def __init__(
        self, app: ASGIApp, *, max_count: int, max_bytes: int, max_authorization: int
    ) -> None:
        self.app = app
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.max_authorization = max_authorization

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope["headers"])
            if refusal is not None:
                await headers_too_large(refusal).response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        if len(headers) > self.max_count:
            return f"more than {self.max_count} request headers"
        if sum(len(name) + len(value) for name, value in headers) > self.max_bytes:
            return f"the request headers are larger than {self.max_bytes} bytes"
        for name, value in headers:
            if name.lower() == b"authorization" and len(value) > self.max_authorization:
                return f"the Authorization header is larger than {self.max_authorization} bytes"
        return None
