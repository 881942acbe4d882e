"""Domain errors and how they cross the wire.

Business code raises a `DomainError` (or one of the subclasses named after the gRPC
code it maps to) with a stable, machine-readable `reason` such as
`INSUFFICIENT_CREDITS`. The server interceptor turns it into a gRPC status whose
details carry a `google.rpc.ErrorInfo` (reason, domain, metadata), which is what the
gateway renders as `{"error": {"code": reason, ...}}`. A lost database connection is
UNAVAILABLE (`database_unavailable`, retryable). Anything else that escapes a
handler becomes INTERNAL with a fixed message: no exception text reaches a client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "klik"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
INTERNAL_MESSAGE = "internal error"
DATABASE_UNAVAILABLE_MESSAGE = "the database is unavailable; try again"


class DomainError(Exception):
    """A rule of the domain refused the request. Subclasses fix the gRPC code."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        details: Mapping[str, object] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        # ErrorInfo.metadata is map<string, string>: values are stringified here and
        # the gateway restores integers when it renders JSON.
        self.details = {k: str(v) for k, v in (details or {}).items()}
        self.retry_after_seconds = retry_after_seconds


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DomainError):
    code = grpc.StatusCode.ABORTED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE


class WireStatus(NamedTuple):
    """A `grpc.Status` (the interface `abort_with_status` takes) we can build directly."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def _status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Mapping[str, str],
    request_id: str,
    retry_after_seconds: float | None = None,
) -> WireStatus:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    details = [_pack(info)]
    if retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after_seconds * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    rich = status_pb2.Status(code=code.value[0], message=message, details=details)
    trailers: tuple[tuple[str, str | bytes], ...] = (
        (STATUS_DETAILS_KEY, rich.SerializeToString()),
    )
    if request_id:
        trailers += (("x-request-id", request_id),)
    return WireStatus(code, message, trailers)


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.RetryInfo) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def domain_status(error: DomainError, request_id: str = "") -> WireStatus:
    return _status(
        error.code,
        error.message,
        error.reason,
        error.details,
        request_id,
        error.retry_after_seconds,
    )


def plain_status(code: grpc.StatusCode, message: str, request_id: str = "") -> WireStatus:
    """A status for failures that are not domain rules (drain, internal, unimplemented):
    the reason is the status name, as API.md prescribes."""
    return _status(code, message, code.name, {}, request_id)


def internal_status(request_id: str = "") -> WireStatus:
    return plain_status(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, request_id)


def database_unavailable(request_id: str = "") -> WireStatus:
    """A call that lost its database connection: UNAVAILABLE (503), worth retrying."""
    return plain_status(grpc.StatusCode.UNAVAILABLE, DATABASE_UNAVAILABLE_MESSAGE, request_id)


class ErrorDetails(NamedTuple):
    """What a client learns from a failed call's rich status."""

    reason: str
    metadata: dict[str, str]
    retry_after_seconds: float | None


def error_details(trailing_metadata: object) -> ErrorDetails | None:
    """Read ErrorInfo (and RetryInfo) from a failed call's trailing metadata, e.g.
    `error_details(rpc_error.trailing_metadata())`; None when the server sent none."""
    for key, value in trailing_metadata or ():  # type: ignore[attr-defined]
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        rich = status_pb2.Status.FromString(value)
        found: ErrorDetails | None = None
        retry: float | None = None
        for item in rich.details:
            if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                item.Unpack(info)
                found = ErrorDetails(info.reason, dict(info.metadata), None)
            elif item.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry_info = error_details_pb2.RetryInfo()
                item.Unpack(retry_info)
                retry = retry_info.retry_delay.ToNanoseconds() / 1e9
        if found is not None:
            return found._replace(retry_after_seconds=retry)
    return None


# ---- a peer's refusal, back as a DomainError ---------------------------------------------

_BY_CODE: dict[grpc.StatusCode, type[DomainError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Aborted,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
        Unavailable,
    )
}


def peer_refusal(error: grpc.aio.AioRpcError, *, bare: bool = True) -> DomainError | None:
    """The refusal another klik service answered with, as the same DomainError: its
    code (the subclass), reason, message, metadata and retry delay, so it reaches our
    own caller as the peer said it. None when the status is no refusal a DomainError
    stands for (DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, CANCELLED, …).

    A status without ErrorInfo (one grpc made itself: a connection that failed, a
    message over the size limit) is a refusal with the code's name as its reason when
    `bare` (the default), as the server's `plain_status` would have sent it; None when
    not. What to pass on is each caller's own rule, stated where it calls:

        refusal = peer_refusal(error, bare=False)
        if refusal is None or refusal.code not in WALLET_REFUSALS:
            return WalletUnavailable(...)
        return refusal
    """
    code = error.code()
    kind = _BY_CODE.get(code)
    if kind is None:
        return None
    info = error_details(error.trailing_metadata())
    if info is None:
        if not bare:
            return None
        return kind(code.name, error.details() or code.name)
    return kind(
        info.reason,
        error.details() or info.reason,
        details=info.metadata,
        retry_after_seconds=info.retry_after_seconds,
    )
