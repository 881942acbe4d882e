"""The uvicorn server the gateway runs on, with one addition: on SIGTERM/SIGINT it
ends the open event streams first, so they do not hold the shutdown for the whole
grace period (uvicorn waits for in-flight responses, and an SSE response never ends
by itself). Clients reconnect to another replica with Last-Event-ID."""

from __future__ import annotations

from types import FrameType

import uvicorn
from starlette.applications import Starlette


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.gateway = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        hub = self.gateway.state.upstreams.events
        if hub is not None:
            hub.close_all()
        super().handle_exit(sig, frame)
