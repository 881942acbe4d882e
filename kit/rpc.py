"""Outgoing gRPC: channels to other services that forward the request id and the
caller's remaining deadline, and give every call a deadline of its own."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from kit.context import deadline_var, request_id_var
from kit.interceptors import REQUEST_ID_KEY

DEFAULT_TIMEOUT_SECONDS = 10.0
# Deadlines shorter than this after propagation are still sent, so the callee (not
# the caller) reports DEADLINE_EXCEEDED consistently.
_MIN_TIMEOUT = 0.001

# A klik server refuses calls with UNAVAILABLE before running them (starting or
# draining: see kit.gate), so retrying UNAVAILABLE on another replica is safe for every
# method; the deadline still bounds the whole call.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}

CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
)


def target(address: str) -> str:
    """`host:port`, a comma-separated list of replicas, or any gRPC target URI
    (`dns:///svc:50051`); a list becomes an `ipv4:` target balanced round robin."""
    if "," in address:
        return "ipv4:" + ",".join(part.strip() for part in address.split(","))
    return address


class _Propagate(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, default_timeout: float, bearer: Callable[[], str] | None = None) -> None:
        self.default_timeout = default_timeout
        self.bearer = bearer

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        request_id = request_id_var.get()
        if request_id and REQUEST_ID_KEY not in metadata:
            metadata.add(REQUEST_ID_KEY, request_id)
        # A call made on a user's behalf carries their token; others this service's.
        if self.bearer is not None and "authorization" not in metadata:
            metadata.add("authorization", f"Bearer {self.bearer()}")
        timeout = details.timeout if details.timeout is not None else self.default_timeout
        deadline = deadline_var.get()
        if deadline is not None:
            timeout = min(timeout, max(deadline - time.monotonic(), _MIN_TIMEOUT))
        return grpc.aio.ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


def channel(
    address: str,
    *,
    default_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    bearer: Callable[[], str] | None = None,
) -> grpc.aio.Channel:
    """One long-lived channel per upstream; share it, don't open one per call.
    `bearer` supplies the token sent when a call carries no `authorization` of its
    own (a service identity: `lambda: identity.token("wallet")`)."""
    return grpc.aio.insecure_channel(
        target(address),
        options=CHANNEL_OPTIONS,
        interceptors=[_Propagate(default_timeout, bearer)],
    )
