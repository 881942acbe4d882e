"""Drill: every database connection terminated, three times, while the wallet (the
kit's server, UnitOfWork and outbox on its hot path) is under load through real
gRPC. No call answers INTERNAL (a lost connection is UNAVAILABLE, retryable), a
call retried with its idempotency key after UNAVAILABLE applies once, and the books
balance afterwards: nothing was half-written."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import grpc
import pytest

from klik.wallet.v1 import holds_pb2, holds_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from tests.helpers import wait_for
from tests.integration.test_db_disconnect import terminate_all
from tests.wallet.conftest import (  # noqa: F401  (fixtures)
    StartWallet,
    engine,
    new_user,
    start_wallet,
)
from tests.wallet.support import books
from tests.wallet.test_api import later
from tests.wallet.test_concurrency import Tally, channels, fund

CALLS = 150
KILLS_AT = (25, 65, 105)  # after this many calls have answered
CONCURRENCY = 12

Call = Callable[[], Awaitable[None]]


@pytest.mark.drill
async def test_every_database_connection_terminated_under_load(
    start_wallet: StartWallet,  # noqa: F811
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL")
    stack = await start_wallet()
    users = [new_user() for _ in range(4)]
    await stack.register(*users)
    await fund(stack, users, 400)
    pool = channels(stack)
    rng = random.Random(17)
    tally = Tally()
    allowed = ("INSUFFICIENT_CREDITS", "UNAVAILABLE")
    answered = 0
    unavailable: list[Call] = []  # each retried afterwards with the same keys

    async def attempt(call: Call) -> None:
        nonlocal answered
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            tally.failed(error, allowed)
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                unavailable.append(call)
        finally:
            answered += 1

    def transfer(n: int) -> Call:
        sender, recipient = rng.sample(users, 2)
        amount = rng.randint(1, 60)

        async def call() -> None:
            await wallet_pb2_grpc.WalletServiceStub(pool[n % len(pool)]).Transfer(
                wallet_pb2.TransferRequest(
                    to_user_id=recipient, amount=amount, idempotency_key=f"t{n}"
                ),
                metadata=stack.user(sender),
                timeout=30,
            )
            tally.outcomes["transferred"] += 1

        return call

    def hold_and_capture(n: int) -> Call:
        user_id, amount = rng.choice(users), rng.randint(1, 60)
        # One request per key: a retry must resend it unchanged, expiry included, or
        # the wallet rightly refuses the key as reused for another request.
        request = holds_pb2.PlaceHoldRequest(
            user_id=user_id, amount=amount, idempotency_key=f"h{n}", expires_at=later()
        )

        async def call() -> None:
            stub = holds_pb2_grpc.HoldServiceStub(pool[n % len(pool)])
            placed = await stub.PlaceHold(
                request,
                metadata=stack.service(),
                timeout=30,
            )
            await stub.CaptureHold(
                holds_pb2.CaptureHoldRequest(
                    hold_id=placed.hold.id, amount=amount, idempotency_key=f"c{n}"
                ),
                metadata=stack.service(),
                timeout=30,
            )
            tally.outcomes["captured"] += 1

        return call

    def read(n: int) -> Call:
        user_id = rng.choice(users)

        async def call() -> None:
            await wallet_pb2_grpc.WalletServiceStub(pool[n % len(pool)]).GetWallet(
                wallet_pb2.GetWalletRequest(), metadata=stack.user(user_id), timeout=30
            )
            tally.outcomes["read"] += 1

        return call

    kinds = (transfer, hold_and_capture, read)
    calls = [kinds[n % 3](n) for n in range(CALLS)]
    slots = asyncio.Semaphore(CONCURRENCY)

    async def limited(call: Call) -> None:
        async with slots:
            await attempt(call)

    terminated = 0

    async def killer() -> None:
        nonlocal terminated
        for threshold in KILLS_AT:

            def reached(at: int = threshold) -> bool:
                return answered >= at

            await wait_for(reached, 60, message=f"{threshold} answered")
            terminated += await asyncio.to_thread(terminate_all, database_url)

    await asyncio.gather(killer(), *(limited(call) for call in calls))
    assert terminated >= len(KILLS_AT)  # the wallet's connections were cut each time
    assert tally.unexpected == []  # no INTERNAL (500), nothing but the allowed refusals

    # A caller told UNAVAILABLE retries with the same idempotency keys: applied once.
    again, unavailable[:] = list(unavailable), []
    for call in again:
        await attempt(call)
    assert unavailable == []
    assert tally.unexpected == []
    assert tally.outcomes["transferred"] >= 10 and tally.outcomes["captured"] >= 10

    report = await books(stack.engine, users)
    assert report.violations == []  # nothing half-written
    assert all(held == 0 for held in report.held.values())  # every hold captured
    assert report.total == report.minted - report.charged
