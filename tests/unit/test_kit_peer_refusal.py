"""kit.errors.peer_refusal: a peer's refusal comes back as the same DomainError."""

from __future__ import annotations

import grpc
import pytest

from kit.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    domain_status,
    peer_refusal,
    plain_status,
)


def failed(
    code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, str | bytes], ...] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details=details
    )


def refused(error: DomainError) -> grpc.aio.AioRpcError:
    status = domain_status(error, request_id="req-1")
    return failed(status.code, status.details, status.trailing_metadata)


def test_a_refusal_comes_back_as_the_peer_said_it() -> None:
    sent = FailedPrecondition(
        "INSUFFICIENT_CREDITS", "not enough credits", details={"available": 3, "needed": 5}
    )
    back = peer_refusal(refused(sent))
    assert type(back) is FailedPrecondition
    assert back is not None
    assert (back.reason, back.message, back.details) == (
        "INSUFFICIENT_CREDITS",
        "not enough credits",
        {"available": "3", "needed": "5"},
    )
    assert back.retry_after_seconds is None


def test_retry_delay_travels_too() -> None:
    back = peer_refusal(
        refused(ResourceExhausted("RATE_LIMITED", "slow down", retry_after_seconds=2.5))
    )
    assert isinstance(back, ResourceExhausted)
    assert back.retry_after_seconds == 2.5


@pytest.mark.parametrize(
    "error", [NotFound("JOB_NOT_FOUND", "no"), Aborted("IDEMPOTENCY_KEY_REUSED", "again")]
)
def test_every_domain_code_maps_to_its_class(error: DomainError) -> None:
    back = peer_refusal(refused(error))
    assert type(back) is type(error)
    assert back is not None and back.code is error.code


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNIMPLEMENTED,
    ],
)
def test_no_refusal_for_codes_no_domain_error_stands_for(code: grpc.StatusCode) -> None:
    status = plain_status(code, "boom")
    assert peer_refusal(failed(status.code, status.details, status.trailing_metadata)) is None
    assert peer_refusal(failed(code, "boom")) is None


def test_a_bare_status_is_a_refusal_named_after_its_code_unless_asked_not_to() -> None:
    bare = failed(grpc.StatusCode.RESOURCE_EXHAUSTED, "message larger than max")
    back = peer_refusal(bare)
    assert isinstance(back, ResourceExhausted)
    assert (back.reason, back.message, back.details) == (
        "RESOURCE_EXHAUSTED",
        "message larger than max",
        {},
    )
    assert peer_refusal(bare, bare=False) is None
    unreachable = peer_refusal(failed(grpc.StatusCode.UNAVAILABLE, ""))
    assert isinstance(unreachable, Unavailable)
    assert (unreachable.reason, unreachable.message) == ("UNAVAILABLE", "UNAVAILABLE")


def test_callers_state_their_own_filter() -> None:
    """How generation (wallet holds) and content (CreateJob) use it."""
    wallet_refusals = {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT}

    def wallet_error(error: grpc.aio.AioRpcError) -> DomainError:
        refusal = peer_refusal(error, bare=False)
        if refusal is None or refusal.code not in wallet_refusals:
            return Unavailable("UNAVAILABLE", "the wallet is unavailable; try again")
        return refusal

    assert wallet_error(refused(InvalidArgument("INVALID_ARGUMENT", "bad"))).reason == (
        "INVALID_ARGUMENT"
    )
    assert isinstance(wallet_error(failed(grpc.StatusCode.INVALID_ARGUMENT, "")), Unavailable)
    assert isinstance(wallet_error(refused(NotFound("X", "x"))), Unavailable)
