"""CORS for browser clients on an origin allow-list (`KLIK_GATEWAY_CORS_ORIGINS`).

A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
here with the methods the path really has — not a global list — and the headers a
client may send (authorization, content-type, x-request-id); actual responses to an
allowed origin expose `x-request-id` and `retry-after`. Tokens travel in the
Authorization header, never in cookies, so credentials mode is not enabled. Responses
to any request with an Origin carry `Vary: Origin` so caches keep them apart."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import error_response

ALLOW_HEADERS = "authorization, content-type, x-request-id"
EXPOSE_HEADERS = "x-request-id, retry-after"
MAX_AGE_SECONDS = 600

# The methods some route accepts on the request's path (empty: no such path).
MethodsFor = Callable[[Scope], frozenset[str]]


class Cors:
    def __init__(self, app: ASGIApp, origins: Sequence[str], methods_for: MethodsFor) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        self.methods_for = methods_for

    def allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self.preflight(scope, origin)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if self.allowed(origin):
                    out["Access-Control-Allow-Origin"] = origin
                    out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def preflight(self, scope: Scope, origin: str) -> Response:
        vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        if not self.allowed(origin):
            response: Response = error_response(
                "PERMISSION_DENIED",
                "this origin may not call the API",
                code="CORS_ORIGIN_NOT_ALLOWED",
                headers={"Vary": vary},
            )
            return response
        methods = self.methods_for(scope)
        if not methods:
            return error_response(
                "NOT_FOUND",
                f"no route for {scope['path']}",
                code="NOT_FOUND",
                headers={"Vary": vary},
            )
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(sorted(methods)),
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
                "Vary": vary,
            },
        )
