"""The gateway's ASGI application: its own routes (health, readiness, metrics) and the
error shape for everything that fails. Transcoded API routes join here (issue 7)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import prometheus_client
from nats.aio.client import Client as Nats
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import error_response
from gateway.middleware import RequestContext
from gateway.readiness import all_ready, dependency_states
from gateway.settings import GatewaySettings
from kit import bus, rpc

log = logging.getLogger(__name__)


@dataclass
class Upstreams:
    """Long-lived connections the gateway holds for its whole life."""

    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    nats: Nats | None = None


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    upstreams: Upstreams = request.app.state.upstreams
    states = await dependency_states(upstreams.channels, upstreams.nats)
    ready = all_ready(states)
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "dependencies": states},
        status_code=200 if ready else 503,
    )


async def metrics(request: Request) -> Response:
    return Response(
        prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(
            "UNIMPLEMENTED",
            f"method {request.method} not allowed on {request.url.path}",
            code="METHOD_NOT_ALLOWED",
            http_status=405,
            headers=exc.headers,
        )
    if exc.status_code == 404:
        return error_response("NOT_FOUND", f"no route for {request.url.path}", code="NOT_FOUND")
    return error_response("UNKNOWN", str(exc.detail), http_status=exc.status_code)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled exception", exc_info=exc)
    return error_response("INTERNAL", "internal error")


async def _connect_bus(settings: GatewaySettings, upstreams: Upstreams) -> None:
    """Connect in the background: the gateway serves /healthz at once and /readyz
    says the bus is down until this succeeds."""
    delay = 0.2
    while upstreams.nats is None:
        try:
            upstreams.nats = await bus.connect(settings.nats_url, name="gateway")
        except Exception as exc:
            log.warning("event bus not ready, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def create_app(settings: GatewaySettings) -> Starlette:
    upstreams = Upstreams()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstreams.channels = {
            name: rpc.channel(address) for name, address in settings.upstreams.items()
        }
        connecting = asyncio.create_task(_connect_bus(settings, upstreams))
        try:
            yield
        finally:
            connecting.cancel()
            if upstreams.nats is not None and not upstreams.nats.is_closed:
                await upstreams.nats.close()
            for channel in upstreams.channels.values():
                await channel.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.state.upstreams = upstreams
    app.state.settings = settings
    app.add_middleware(RequestContext)
    return app
