"""The gateway's ASGI application: its own routes (health, readiness, metrics, the API
document), the transcoded API routes behind them, and the error shape for everything
that fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
import prometheus_client
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from nats.aio.client import Client as Nats
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from gateway.admission import Admission, limiter_for
from gateway.auth import EdgeAuth, auth_unavailable
from gateway.clientaddr import ClientAddress
from gateway.contracts import EVENT_FILES, PUBLIC_SERVICES
from gateway.cors import Cors
from gateway.errors import error_response, method_not_allowed
from gateway.eventhub import EventHub, streamed_types
from gateway.files import serve_file
from gateway.middleware import MAX_AUTHORIZATION_BYTES, HeaderLimits, RequestContext
from gateway.openapi.comments import packaged_comments
from gateway.openapi.document import build_openapi
from gateway.openapi.page import render_page
from gateway.openapi.streams import add_gateway_routes
from gateway.readiness import all_ready, dependency_states
from gateway.settings import GatewaySettings
from gateway.sse import stream_events
from gateway.transcoding.endpoint import Transcoder, raw_path
from gateway.transcoding.routes import build_routes
from gateway.uploads import receive_upload
from gateway.webapp import install_webapp
from kit import bus, rpc
from kit.assets import open_asset_store
from kit.retry import retry_until_ready
from kit.revocations import RevocationFeed
from kit.tokens import JwksSource, grpc_jwks_source

log = logging.getLogger(__name__)


@dataclass
class Upstreams:
    """Long-lived connections the gateway holds for its whole life."""

    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    nats: Nats | None = None
    events: EventHub | None = None  # set once the bus is connected
    revocations: RevocationFeed | None = None


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


async def openapi_json(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def docs(request: Request) -> Response:
    return HTMLResponse(request.app.state.docs)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # Starlette's order is a set's: sorted, like the API routes' Allow.
        allow = sorted(filter(None, (exc.headers or {}).get("Allow", "").split(", ")))
        return method_not_allowed(request.method, request.url.path, allow).response()
    if exc.status_code == 404:
        return error_response("NOT_FOUND", f"no route for {request.url.path}", code="NOT_FOUND")
    return error_response("UNKNOWN", str(exc.detail), http_status=exc.status_code)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled exception", exc_info=exc)
    return error_response("INTERNAL", "internal error")


async def _connect_bus(
    settings: GatewaySettings, upstreams: Upstreams, auth: EdgeAuth, streamed: frozenset[str]
) -> None:
    """Connect in the background: the gateway serves /healthz at once and /readyz
    says the bus is down until this succeeds (and /v1/events answers 503)."""
    upstreams.nats = await retry_until_ready(
        "event bus", lambda: bus.connect(settings.nats_url, name="gateway")
    )
    js = upstreams.nats.jetstream()
    await retry_until_ready("event streams", lambda: bus.ensure_streams(js))
    feed = RevocationFeed(
        js,
        auth.revocations,
        token_lifetime=settings.access_token_ttl_seconds + settings.token_leeway_seconds,
    )
    await retry_until_ready("revocation feed", feed.start)
    upstreams.revocations = feed
    hub = EventHub(
        js,
        streamed=streamed,
        max_per_user=settings.events.max_per_user,
        buffer=settings.events.buffer,
    )
    await retry_until_ready("event hub", hub.start)
    # A deleted user's open streams end as soon as the feed hears of it.
    auth.revocations.listeners.append(hub.revoke)
    upstreams.events = hub


def _own_methods(routes: Sequence[BaseRoute], scope: Scope) -> frozenset[str]:
    found: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.path_regex.match(scope["path"]):
            found.update(route.methods or ())
    return frozenset(found)


def _jwks_source(channels: Mapping[str, grpc.aio.Channel]) -> JwksSource:
    """Auth's keys over the gateway's own auth channel (which exists once the app
    has started)."""

    async def fetch() -> Sequence[Mapping[str, str]]:
        channel = channels.get("auth")
        if channel is None:
            raise auth_unavailable()
        return await grpc_jwks_source(channel)()

    return fetch


def create_app(
    settings: GatewaySettings,
    services: Mapping[str, Sequence[ServiceDescriptor]] = PUBLIC_SERVICES,
    comments: Mapping[str, str] | None = None,
    events: Sequence[FileDescriptor] = EVENT_FILES,
) -> Starlette:
    """The gateway for `services` (upstream name -> services it serves), routed from
    their annotations; `comments` (element full name -> proto comment) describe the
    API document, by default the packaged klik/descriptors.binpb; `/v1/events`
    streams the event payloads of `events` marked `streamed`."""
    upstreams = Upstreams()
    routes = build_routes(services)
    streamed = streamed_types(events)
    auth = EdgeAuth(
        _jwks_source(upstreams.channels),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
    )
    admission = Admission(auth, limiter_for(settings))
    transcoder = Transcoder(routes, upstreams.channels, settings, admission)
    # A deleted user's open RPC streams end as soon as the revocation feed hears of it.
    auth.revocations.listeners.append(transcoder.streams.revoke)
    assets = open_asset_store(settings.assets)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Filled in place: the transcoder holds this very dict.
        upstreams.channels.update(
            {name: rpc.channel(address) for name, address in settings.upstreams.items()}
        )
        connecting = asyncio.create_task(_connect_bus(settings, upstreams, auth, streamed))
        try:
            yield
        finally:
            connecting.cancel()
            if upstreams.events is not None:
                await upstreams.events.stop()
            if upstreams.revocations is not None:
                await upstreams.revocations.stop()
            await assets.close()
            if upstreams.nats is not None and not upstreams.nats.is_closed:
                await upstreams.nats.close()
            for channel in upstreams.channels.values():
                await channel.close()
            upstreams.channels.clear()

    own_routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/v1/events", stream_events, methods=["GET"]),
        Route("/v1/files/{key:path}", serve_file, methods=["GET", "HEAD"]),
        Route("/v1/uploads/{upload_id}/content", receive_upload, methods=["PUT"]),
    ]
    app = Starlette(
        routes=own_routes,
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
        lifespan=lifespan,
    )
    # Whatever none of the gateway's own routes matches is an API route (or 404/405).
    app.router.default = transcoder
    install_webapp(app)  # klik studio at / (gateway/webapp.py)
    # `/v1/files` (or `/v1/files/.`, which clients shorten to it) is a 404 in the
    # error shape, not a bare 307 to `/v1/files/`.
    app.router.redirect_slashes = False
    spec = add_gateway_routes(
        build_openapi(routes, packaged_comments() if comments is None else comments), streamed
    )
    app.state.openapi = spec
    app.state.docs = render_page(spec)
    app.state.upstreams = upstreams
    app.state.settings = settings
    app.state.transcoder = transcoder
    app.state.admission = admission
    app.state.assets = assets

    def methods_for(scope: Scope) -> frozenset[str]:
        return transcoder.matcher.methods(raw_path(scope)) | _own_methods(own_routes, scope)

    # Added first, so runs last: the address is resolved only for admitted requests.
    app.add_middleware(ClientAddress, proxies=settings.trusted_proxies)
    # Inside RequestContext: preflight answers and 431s carry a request id.
    app.add_middleware(Cors, origins=settings.cors_origins, methods_for=methods_for)
    app.add_middleware(
        HeaderLimits,
        max_count=settings.max_headers,
        max_bytes=settings.max_header_bytes,
        max_authorization=MAX_AUTHORIZATION_BYTES,
    )
    app.add_middleware(RequestContext)
    return app
