"""The uvicorn server the gateway runs on, with one addition: on SIGTERM/SIGINT it
ends the open event streams (and streaming RPC routes) first, so they do not hold
the shutdown for the whole grace period (uvicorn waits for in-flight responses,
and an SSE response never ends by itself). Clients reconnect to another replica
with Last-Event-ID."""

from __future__ import annotations

from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from gateway.settings import GatewaySettings


def server_config(app: Starlette, settings: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's configuration for the gateway: uvloop and httptools, and
    `proxy_headers` off — uvicorn would otherwise take the client address from
    X-Forwarded-For of any peer in `FORWARDED_ALLOW_IPS` (127.0.0.1 by default); the
    gateway decides it itself (gateway.clientaddr, `KLIK_GATEWAY_TRUSTED_PROXIES`)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": int(settings.grace_seconds),
        "proxy_headers": False,
        "forwarded_allow_ips": "",
        "loop": "uvloop",
        "http": "httptools",
        **overrides,
    }
    return uvicorn.Config(app, **options)


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.gateway = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        hub = self.gateway.state.upstreams.events
        if hub is not None:
            hub.close_all()
        self.gateway.state.transcoder.streams.close_all()
        super().handle_exit(sig, frame)
