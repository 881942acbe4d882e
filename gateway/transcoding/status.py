"""A failed upstream call into API.md's error shape.

A klik service always sends a `google.rpc.ErrorInfo` (kit.errors): its reason becomes
`code`, its message `message`, its metadata `details` (integer strings back to JSON
numbers: ErrorInfo metadata is map<string, string>). A status without ErrorInfo did
not come from a klik servicer — gRPC itself (connection refused, deadline exceeded)
or something between — so its text is replaced by a fixed message: it may name hosts,
ports or internals. A RetryInfo delay becomes `Retry-After` (whole seconds, rounded up).
A reason the contracts give an HTTP status of its own (`(klik.options.v1.reason_status)`,
gateway.errors.reason_statuses) is answered with that status."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import grpc
from google.rpc import status_pb2

from gateway.errors import GatewayError
from kit.errors import STATUS_DETAILS_KEY, error_details

_INTEGER = re.compile(r"^-?(0|[1-9][0-9]{0,15})$")
_JSON_SAFE_INTEGER = 2**53

_FIXED_MESSAGES = {
    "UNAVAILABLE": "the {upstream} service is unavailable",
    "DEADLINE_EXCEEDED": "the {upstream} service did not answer in time",
    "UNIMPLEMENTED": "not implemented",
    "CANCELLED": "the request was cancelled",
    "RESOURCE_EXHAUSTED": "the {upstream} service is out of resources",
    "UNAUTHENTICATED": "unauthenticated",
    "PERMISSION_DENIED": "permission denied",
}


def rpc_failure(
    error: grpc.aio.AioRpcError, upstream: str, reason_statuses: Mapping[str, int]
) -> GatewayError:
    """`reason_statuses`: reason -> HTTP status where it is not the table's."""
    status = error.code().name
    trailing = error.trailing_metadata()
    rich = _rich_status(trailing)
    # gRPC itself may fail a call the servicer refused (a reply's metadata over the
    # size limit): the status and text are then the transport's, not the servicer's,
    # even with its ErrorInfo still attached. Only the servicer's own are passed on.
    own = rich is not None and rich.code == error.code().value[0]
    info = error_details(trailing) if own else None
    headers: dict[str, str] = {}
    if info is None or rich is None:
        message = _FIXED_MESSAGES.get(status, "upstream error").format(upstream=upstream)
        return GatewayError(status, message)
    if info.retry_after_seconds is not None:
        headers["Retry-After"] = str(max(0, math.ceil(info.retry_after_seconds)))
    reason = info.reason or status
    return GatewayError(
        status,
        rich.message or status,
        code=reason,
        details={key: render_detail(value) for key, value in info.metadata.items()},
        http_status=reason_statuses.get(reason),
        headers=headers,
    )


def _rich_status(trailing_metadata: object) -> status_pb2.Status | None:
    """The `google.rpc.Status` a klik servicer attached (kit.errors), if any."""
    for key, value in trailing_metadata or ():  # type: ignore[attr-defined]
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def render_detail(value: str) -> str | int:
    """ErrorInfo metadata values that are integers render as JSON numbers (within
    the range a JavaScript number holds exactly)."""
    if _INTEGER.match(value) and abs(int(value)) < _JSON_SAFE_INTEGER:
        return int(value)
    return value
