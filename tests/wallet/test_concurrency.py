"""The ledger under concurrency, through real gRPC against two wallet replicas sharing
one database: many transfers and holds at once keep every invariant and never show a
client a deadlock; copies of one idempotent request apply once; two holds that fit
the balance one at a time but not together let exactly one through."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

import grpc

from kit.errors import error_details
from klik.wallet.v1 import holds_pb2, holds_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from tests.wallet.conftest import StartWallet, WalletStack, new_user
from tests.wallet.support import books
from tests.wallet.test_api import balance, later

CHANNELS_PER_REPLICA = 6


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    charged: int = 0
    unexpected: list[str] = field(default_factory=list)

    def failed(self, error: grpc.aio.AioRpcError, expected: tuple[str, ...]) -> None:
        details = error_details(error.trailing_metadata())
        reason = details.reason if details else error.code().name
        if reason in expected:
            self.outcomes[reason] += 1
        else:
            self.unexpected.append(f"{error.code().name} {reason}: {error.details()}")


def channels(stack: WalletStack) -> list[grpc.aio.Channel]:
    """Several connections to every replica (closed with the test)."""
    opened = []
    for server in stack.servers:
        for _ in range(CHANNELS_PER_REPLICA):
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{server.port}", options=(("grpc.use_local_subchannel_pool", 1),)
            )
            opened.append(channel)
    stack.channels.extend(opened)  # the fixture closes them
    return opened


async def fund(stack: WalletStack, user_ids: list[str], amount: int) -> None:
    admin = stack.user(new_user(), "admin")
    for user_id in user_ids:
        await stack.wallet().GrantCredits(
            wallet_pb2.GrantCreditsRequest(
                user_id=user_id, amount=amount, idempotency_key=f"fund-{user_id}"
            ),
            metadata=admin,
            timeout=5,
        )


async def test_200_concurrent_transfers_and_holds_keep_the_books(
    start_wallet: StartWallet,
) -> None:
    stack = await start_wallet(replicas=2)
    users = [new_user() for _ in range(5)]
    await stack.register(*users)
    await fund(stack, users, 400)  # 500 each: enough that most calls succeed, not all
    pool = channels(stack)
    rng = random.Random(20240601)
    tally = Tally()
    insufficient = ("INSUFFICIENT_CREDITS",)

    async def transfer(n: int, sender: str, recipient: str, amount: int) -> None:
        stub = wallet_pb2_grpc.WalletServiceStub(pool[n % len(pool)])
        try:
            await stub.Transfer(
                wallet_pb2.TransferRequest(
                    to_user_id=recipient, amount=amount, idempotency_key=f"t{n}"
                ),
                metadata=stack.user(sender),
                timeout=30,
            )
            tally.outcomes["transferred"] += 1
        except grpc.aio.AioRpcError as error:
            tally.failed(error, insufficient)

    async def hold_then_settle(n: int, user_id: str, amount: int, capture: int | None) -> None:
        stub = holds_pb2_grpc.HoldServiceStub(pool[n % len(pool)])
        generation = stack.service()
        try:
            placed = await stub.PlaceHold(
                holds_pb2.PlaceHoldRequest(
                    user_id=user_id, amount=amount, idempotency_key=f"h{n}", expires_at=later()
                ),
                metadata=generation,
                timeout=30,
            )
        except grpc.aio.AioRpcError as error:
            tally.failed(error, insufficient)
            return
        tally.outcomes["held"] += 1
        try:
            if capture is None:
                await stub.ReleaseHold(
                    holds_pb2.ReleaseHoldRequest(hold_id=placed.hold.id, idempotency_key=f"r{n}"),
                    metadata=generation,
                    timeout=30,
                )
                tally.outcomes["released"] += 1
            else:
                captured = await stub.CaptureHold(
                    holds_pb2.CaptureHoldRequest(
                        hold_id=placed.hold.id, amount=capture, idempotency_key=f"c{n}"
                    ),
                    metadata=generation,
                    timeout=30,
                )
                tally.charged += captured.hold.captured_amount
                tally.outcomes["captured"] += 1
        except grpc.aio.AioRpcError as error:
            tally.failed(error, ())

    calls = []
    for n in range(200):
        if n % 2 == 0:
            # Opposite directions between the same two wallets at once: the classic
            # lock-ordering deadlock, if there were one.
            a, b = rng.sample(users, 2)
            sender, recipient = (a, b) if n % 4 == 0 else (b, a)
            calls.append(transfer(n, sender, recipient, rng.randint(1, 120)))
        else:
            capture = None if rng.random() < 0.3 else rng.randint(0, 150)
            calls.append(hold_then_settle(n, rng.choice(users), rng.randint(1, 120), capture))
    await asyncio.gather(*calls)

    assert tally.unexpected == []
    assert tally.outcomes["transferred"] >= 20 and tally.outcomes["held"] >= 20
    assert tally.outcomes["captured"] + tally.outcomes["released"] == tally.outcomes["held"]
    report = await books(stack.engine, users)
    assert report.violations == []
    assert all(held == 0 for held in report.held.values())  # every hold settled
    assert report.minted == 5 * 500
    assert report.charged == tally.charged
    assert report.total == report.minted - report.charged


async def test_20_copies_of_one_request_apply_once(start_wallet: StartWallet) -> None:
    stack = await start_wallet(replicas=2)
    alice, bob = new_user(), new_user()
    await stack.register(alice, bob)
    pool = channels(stack)

    transfer = wallet_pb2.TransferRequest(to_user_id=bob, amount=7, idempotency_key="once")
    replies = await asyncio.gather(
        *(
            wallet_pb2_grpc.WalletServiceStub(pool[i % len(pool)]).Transfer(
                transfer, metadata=stack.user(alice), timeout=30
            )
            for i in range(20)
        )
    )
    assert len({reply.transaction.id for reply in replies}) == 1
    assert all(reply == replies[0] for reply in replies)
    assert await balance(stack, alice) == (93, 0, 93)
    assert await balance(stack, bob) == (107, 0, 107)

    place = holds_pb2.PlaceHoldRequest(
        user_id=alice, amount=50, idempotency_key="hold-once", expires_at=later()
    )
    holds = await asyncio.gather(
        *(
            holds_pb2_grpc.HoldServiceStub(pool[i % len(pool)]).PlaceHold(
                place, metadata=stack.service(), timeout=30
            )
            for i in range(20)
        )
    )
    assert len({reply.hold.id for reply in holds}) == 1
    assert await balance(stack, alice) == (93, 50, 43)

    capture = holds_pb2.CaptureHoldRequest(
        hold_id=holds[0].hold.id, amount=20, idempotency_key="capture-once"
    )
    captures = await asyncio.gather(
        *(
            holds_pb2_grpc.HoldServiceStub(pool[i % len(pool)]).CaptureHold(
                capture, metadata=stack.service(), timeout=30
            )
            for i in range(20)
        )
    )
    assert len({reply.transaction.id for reply in captures}) == 1
    assert await balance(stack, alice) == (73, 0, 73)
    report = await books(stack.engine, [alice, bob])
    assert report.violations == []
    assert report.charged == 20 and report.total == 200 - 20


async def test_a_double_spend_lets_exactly_one_through(start_wallet: StartWallet) -> None:
    stack = await start_wallet(replicas=2)
    pool = channels(stack)
    victims = [new_user() for _ in range(10)]
    await stack.register(*victims)

    async def hold(n: int, user_id: str, amount: int) -> str:
        stub = holds_pb2_grpc.HoldServiceStub(pool[n % len(pool)])
        try:
            await stub.PlaceHold(
                holds_pb2.PlaceHoldRequest(
                    user_id=user_id, amount=amount, idempotency_key=f"spend-{n}", expires_at=later()
                ),
                metadata=stack.service(),
                timeout=30,
            )
            return "ok"
        except grpc.aio.AioRpcError as error:
            details = error_details(error.trailing_metadata())
            assert details is not None, error
            assert details.metadata == {"required": str(amount), "available": "40"}
            return details.reason

    async def transfer(n: int, user_id: str, amount: int) -> str:
        stub = wallet_pb2_grpc.WalletServiceStub(pool[n % len(pool)])
        try:
            await stub.Transfer(
                wallet_pb2.TransferRequest(
                    to_user_id=victims[0] if user_id != victims[0] else victims[1],
                    amount=amount,
                    idempotency_key=f"spend-{n}",
                ),
                metadata=stack.user(user_id),
                timeout=30,
            )
            return "ok"
        except grpc.aio.AioRpcError as error:
            details = error_details(error.trailing_metadata())
            assert details is not None, error
            return details.reason

    # Two holds of 60 on a wallet of 100: each fits alone, not both.
    for i, user_id in enumerate(victims[:8]):
        outcomes = await asyncio.gather(hold(2 * i, user_id, 60), hold(2 * i + 1, user_id, 60))
        assert sorted(outcomes) == ["INSUFFICIENT_CREDITS", "ok"], outcomes
        assert await balance(stack, user_id) == (100, 60, 40)
    # A hold and a transfer racing for the same credits: one wins.
    spender = victims[9]
    outcomes = await asyncio.gather(hold(100, spender, 60), transfer(101, spender, 60))
    assert sorted(outcomes) == ["INSUFFICIENT_CREDITS", "ok"], outcomes
    _, _, available = await balance(stack, spender)
    assert available == 40
    report = await books(stack.engine, victims)
    assert report.violations == []
