"""The wallet's holds, as generation uses them: one hold per job, placed, captured
or released with keys derived from the job id, so any replica can repeat any of
these calls (after a crash, a lost answer, a race) and the wallet does it once.

Calls present this service's identity (`resources.channel("wallet")`); the wallet
refuses anyone else. Wallet refusals come back as the same domain errors (code,
reason, metadata), so INSUFFICIENT_CREDITS reaches the client as the wallet said it."""

from __future__ import annotations

import grpc

from kit import errors
from kit.errors import DomainError, peer_refusal
from klik.wallet.v1 import holds_pb2, holds_pb2_grpc
from services.generation.domain import Job

CALL_TIMEOUT_SECONDS = 10.0

# The wallet's refusals passed on as it said them; anything else (a bare status, a
# code no refusal of the wallet's has) is transport trouble: try again.
WALLET_REFUSALS = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


class WalletUnavailable(errors.Unavailable):
    """The wallet could not be reached or did not answer in time; try again."""


def wallet_error(error: grpc.aio.AioRpcError) -> DomainError:
    """The wallet's refusal as a domain error; transport trouble as WalletUnavailable."""
    refusal = peer_refusal(error, bare=False)
    if refusal is None or refusal.code not in WALLET_REFUSALS:
        return WalletUnavailable("UNAVAILABLE", "the wallet is unavailable; try again")
    if refusal.code is grpc.StatusCode.UNAUTHENTICATED:
        # The wallet not knowing this service is our failure, not the user's sign-in.
        return errors.PermissionDenied(refusal.reason, refusal.message, details=refusal.details)
    return refusal


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
