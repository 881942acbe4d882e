"""The wallet's holds, as generation uses them: one hold per job, placed, captured
or released with keys derived from the job id, so any replica can repeat any of
these calls (after a crash, a lost answer, a race) and the wallet does it once.

Calls present this service's identity (`resources.channel("wallet")`); the wallet
refuses anyone else. Wallet refusals come back as the same domain errors (code,
reason, metadata), so INSUFFICIENT_CREDITS reaches the client as the wallet said it."""

from __future__ import annotations

import grpc

from kit import errors
from kit.errors import DomainError, error_details
from klik.wallet.v1 import holds_pb2, holds_pb2_grpc
from services.generation.domain import Job

CALL_TIMEOUT_SECONDS = 10.0

_ERRORS: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.ABORTED: errors.Aborted,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.PermissionDenied,
}


class WalletUnavailable(errors.Unavailable):
    """The wallet could not be reached or did not answer in time; try again."""


def wallet_error(error: grpc.aio.AioRpcError) -> DomainError:
    """The wallet's refusal as a domain error; transport trouble as WalletUnavailable."""
    kind = _ERRORS.get(error.code())
    details = error_details(error.trailing_metadata())
    if kind is None or details is None:
        return WalletUnavailable("UNAVAILABLE", "the wallet is unavailable; try again")
    message = error.details() or details.reason
    return kind(details.reason, message, details=details.metadata)


class Holds:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = holds_pb2_grpc.HoldServiceStub(channel)

    async def place(self, job: Job) -> str:
        """Place (or find again: same key, same request) the job's hold; its id."""
        request = holds_pb2.PlaceHoldRequest(
            user_id=job.user_id,
            amount=job.estimate,
            idempotency_key=f"generation-job:{job.id}",
            reference=job.id,
            description=f"generation {job.kind.value} job {job.id}",
        )
        request.expires_at.FromDatetime(job.hold_expires_at)
        try:
            reply = await self._stub.PlaceHold(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise wallet_error(error) from None
        return str(reply.hold.id)

    async def capture(self, job: Job, amount: int) -> int:
        """Charge `amount` (at most the hold) and free the rest; what was charged."""
        request = holds_pb2.CaptureHoldRequest(
            hold_id=job.hold_id, amount=amount, idempotency_key=f"generation-capture:{job.id}"
        )
        try:
            reply = await self._stub.CaptureHold(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise wallet_error(error) from None
        return int(reply.hold.captured_amount)

    async def release(self, job: Job, hold_id: str = "") -> None:
        """Free the hold. A hold already released or expired is fine: nothing is held."""
        request = holds_pb2.ReleaseHoldRequest(
            hold_id=hold_id or job.hold_id, idempotency_key=f"generation-release:{job.id}"
        )
        try:
            await self._stub.ReleaseHold(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise wallet_error(error) from None
