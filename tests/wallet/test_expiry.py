"""Holds that pass their `expires_at`: the sweeper frees their credits, and a late
capture is refused with HOLD_EXPIRED whether or not the sweeper got there first."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from sqlalchemy import select

from klik.wallet.v1 import holds_pb2
from services.wallet.store import holds
from tests.helpers import wait_for
from tests.wallet.conftest import StartWallet, WalletStack, new_user
from tests.wallet.support import books, failure
from tests.wallet.test_api import balance, place


async def hold_status(stack: WalletStack, hold_id: str) -> str:
    async with stack.engine.connect() as conn:
        return str(await conn.scalar(select(holds.c.status).where(holds.c.id == hold_id)))


async def test_the_sweeper_expires_holds_and_frees_their_credits(wallet: WalletStack) -> None:
    alice = new_user()
    await wallet.register(alice)
    short = await place(wallet, alice, 30, seconds=3)
    long = await place(wallet, alice, 20, seconds=600)
    assert await balance(wallet, alice) == (100, 50, 50)

    async def swept() -> bool:
        return await balance(wallet, alice) == (100, 20, 80)

    await wait_for(swept, 30, message="the sweeper released the expired hold")
    assert await hold_status(wallet, short.id) == "expired"
    assert await hold_status(wallet, long.id) == "open"

    generation = wallet.service()
    late = await failure(
        wallet.holds().CaptureHold(
            holds_pb2.CaptureHoldRequest(hold_id=short.id, amount=30, idempotency_key="c"),
            metadata=generation,
            timeout=5,
        )
    )
    assert (late.code, late.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "HOLD_EXPIRED")
    # Releasing an expired hold changes nothing and returns it as it is.
    released = await wallet.holds().ReleaseHold(
        holds_pb2.ReleaseHoldRequest(hold_id=short.id, idempotency_key="r"),
        metadata=generation,
        timeout=5,
    )
    assert released.hold.status == "expired"
    assert await balance(wallet, alice) == (100, 20, 80)
    report = await books(wallet.engine, [alice])
    assert report.violations == [] and report.charged == 0


async def test_a_capture_after_expiry_is_refused_before_the_sweeper_runs(
    start_wallet: StartWallet,
) -> None:
    # A sweeper that never comes round in this test.
    stack = await start_wallet(sweep_interval=3600.0)
    alice = new_user()
    await stack.register(alice)
    hold = await place(stack, alice, 30, seconds=0.3)
    expires = hold.expires_at.ToDatetime(tzinfo=UTC)
    await wait_for(lambda: datetime.now(UTC) > expires, 5, message="the hold's expiry passed")
    assert await hold_status(stack, hold.id) == "open"

    late = await failure(
        stack.holds().CaptureHold(
            holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=30, idempotency_key="c"),
            metadata=stack.service(),
            timeout=5,
        )
    )
    assert (late.code, late.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "HOLD_EXPIRED")
    # The refusal recorded the expiry: the credits are free at once.
    assert await hold_status(stack, hold.id) == "expired"
    assert await balance(stack, alice) == (100, 0, 100)
    # The same key again is still refused (a refusal keeps no key), and charges nothing.
    again = await failure(
        stack.holds().CaptureHold(
            holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=30, idempotency_key="c"),
            metadata=stack.service(),
            timeout=5,
        )
    )
    assert again.reason == "HOLD_EXPIRED"
    report = await books(stack.engine, [alice])
    assert report.violations == [] and report.charged == 0


async def test_releasing_an_open_hold_past_expiry_expires_it(start_wallet: StartWallet) -> None:
    stack = await start_wallet(sweep_interval=3600.0)
    alice = new_user()
    await stack.register(alice)
    hold = await place(stack, alice, 25, seconds=0.3)
    expires = hold.expires_at.ToDatetime(tzinfo=UTC)
    await wait_for(lambda: datetime.now(UTC) > expires, 5, message="the hold's expiry passed")
    released = await stack.holds().ReleaseHold(
        holds_pb2.ReleaseHoldRequest(hold_id=hold.id, idempotency_key="r"),
        metadata=stack.service(),
        timeout=5,
    )
    assert released.hold.status == "expired"
    assert await balance(stack, alice) == (100, 0, 100)
