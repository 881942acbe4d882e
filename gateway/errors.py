"""The one error body every non-2xx response has (API.md § Conventions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import MethodDescriptor
from starlette.responses import JSONResponse

from kit.context import current_request_id
from klik.options.v1 import options_pb2

# gRPC status name -> HTTP status, the standard table (API.md).
HTTP_STATUS: Mapping[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
}
# protoc's stubs type extensions as plain FieldDescriptors, which Extensions[] refuses.
_REASON_STATUS: Any = options_pb2.reason_status


def declared_statuses(method: MethodDescriptor) -> Sequence[options_pb2.ReasonStatus]:
    """The reasons `method` answers with an HTTP status of their own: its
    `(klik.options.v1.reason_status)` options (e.g. INSUFFICIENT_CREDITS -> 402)."""
    declared: Sequence[options_pb2.ReasonStatus] = method.GetOptions().Extensions[_REASON_STATUS]
    return declared


def reason_statuses(methods: Iterable[MethodDescriptor]) -> dict[str, int]:
    """Reason -> HTTP status, for every reason whose status is not the table's, as
    `methods` declare them. A reason has one status wherever it comes from: ValueError
    when two methods declare different ones."""
    found: dict[str, tuple[int, str]] = {}
    for method in methods:
        for declared in declared_statuses(method):
            status, where = found.setdefault(
                declared.reason, (declared.http_status, method.full_name)
            )
            if status != declared.http_status:
                raise ValueError(
                    f"{method.full_name} answers {declared.reason} with "
                    f"{declared.http_status}, {where} with {status}"
                )
    return {reason: status for reason, (status, _) in found.items()}


def error_response(
    status: str,
    message: str,
    *,
    code: str | None = None,
    details: Mapping[str, object] | None = None,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """`status` is the gRPC status name; `code` the machine-readable reason
    (defaults to the status name); `http_status` defaults to the table's for
    `status`."""
    if http_status is None:
        http_status = HTTP_STATUS.get(status, 500)
    body = error_body(status, message, code=code, details=details)
    return JSONResponse(body, status_code=http_status, headers=dict(headers or {}))


def error_body(
    status: str,
    message: str,
    *,
    code: str | None = None,
    details: Mapping[str, object] | None = None,
) -> dict[str, dict[str, object]]:
    """API.md's error body (also the data of an event stream's final `error` event)."""
    return {
        "error": {
            "code": code or status,
            "status": status,
            "message": message,
            "details": dict(details or {}),
            "request_id": current_request_id(),
        }
    }


class GatewayError(Exception):
    """A request the gateway refuses itself (bad JSON, too large, rate limited...);
    `response()` renders it in the error shape. The message is for the client: it
    must never carry exception text from inside the gateway."""

    def __init__(
        self,
        status: str,
        message: str,
        *,
        code: str | None = None,
        details: Mapping[str, object] | None = None,
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.details = details
        self.http_status = http_status
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(
            self.status,
            self.message,
            code=self.code,
            details=self.details,
            http_status=self.http_status,
            headers=self.headers,
        )


def method_not_allowed(method: str, path: str, allow: Iterable[str]) -> GatewayError:
    """405 with `Allow`. gRPC has no status for it; like the gateway's other refusals
    of the request's form (413, 415, 431) it is an INVALID_ARGUMENT."""
    return GatewayError(
        "INVALID_ARGUMENT",
        f"method {method} not allowed on {path}",
        code="METHOD_NOT_ALLOWED",
        http_status=405,
        headers={"Allow": ", ".join(allow)},
    )


def headers_too_large(message: str) -> GatewayError:
    """431 (RFC 6585) for too many or too large request headers."""
    return GatewayError("INVALID_ARGUMENT", message, code="HEADERS_TOO_LARGE", http_status=431)


def invalid_field(message: str) -> GatewayError:
    """400 for a value of the wrong type, an unknown field or parameter."""
    return GatewayError("INVALID_ARGUMENT", message, code="INVALID_FIELD")
