"""The wallet's events through real NATS: wallets open from `user.registered` with the
signup bonus exactly once, close on `user.deleted`, and every change publishes
`wallet.changed` from the outbox."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import func, select

from kit.bus import EVENTS_STREAM, event_subject
from kit.config import ConfigError
from kit.tables import outbox, processed_events
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import UserRegistered, WalletChanged
from klik.wallet.v1 import holds_pb2, wallet_pb2
from services.wallet.settings import WalletOptions
from services.wallet.store import ledger
from tests.helpers import envelope, publish_envelope, stream_messages, wait_for
from tests.wallet.conftest import StartWallet, WalletStack, new_user
from tests.wallet.support import books, failure
from tests.wallet.test_api import balance, place


async def rows_of(stack: WalletStack, user_id: str, kind: str) -> int:
    async with stack.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).where(ledger.c.user_id == user_id, ledger.c.kind == kind)
        )
    return int(count or 0)


async def test_the_signup_bonus_is_paid_once_whatever_the_redeliveries(
    wallet: WalletStack,
) -> None:
    alice = new_user()
    registered = envelope("user.registered", UserRegistered(user_id=alice), aggregate_id=alice)
    # The broker keeps all three: different Nats-Msg-Ids slip past its de-duplication.
    await publish_envelope(wallet.js, registered)
    await publish_envelope(wallet.js, registered, msg_id="redelivered-1")
    await publish_envelope(wallet.js, registered, msg_id="redelivered-2")
    # Even the same user registered under another event id (a publisher bug) pays once.
    again = envelope("user.registered", UserRegistered(user_id=alice), aggregate_id=alice)
    await publish_envelope(wallet.js, again)
    await wallet.wait_for_wallets(alice)
    await wallet.drained()

    assert await rows_of(wallet, alice, "signup_bonus") == 1
    assert await balance(wallet, alice) == (100, 0, 100)
    async with wallet.engine.connect() as conn:
        handled = await conn.scalar(
            select(func.count()).where(processed_events.c.event_id.in_((registered.id, again.id)))
        )
        events = await conn.scalar(
            select(func.count()).where(
                outbox.c.aggregate_id == alice, outbox.c.type == "wallet.changed"
            )
        )
    assert handled == 2  # both event ids seen, the copies of the first dropped
    assert events == 1  # one wallet.changed: the bonus


async def test_the_signup_bonus_follows_the_setting(start_wallet: StartWallet) -> None:
    generous = await start_wallet(signup_credits=7)
    alice = new_user()
    await generous.register(alice)
    assert await balance(generous, alice) == (7, 0, 7)


async def test_no_signup_bonus_opens_an_empty_wallet(start_wallet: StartWallet) -> None:
    stingy = await start_wallet(signup_credits=0)
    alice = new_user()
    await stingy.register(alice)
    assert await balance(stingy, alice) == (0, 0, 0)
    assert await rows_of(stingy, alice, "signup_bonus") == 0


def test_wallet_options_come_from_the_environment() -> None:
    options = WalletOptions.from_env(
        {"KLIK_SIGNUP_CREDITS": "250", "KLIK_WALLET_SWEEP_SECONDS": "0.5"}
    )
    assert (options.signup_credits, options.sweep_interval) == (250, 0.5)
    assert WalletOptions.from_env({}).signup_credits == 100
    assert WalletOptions.from_env({}).key_retention_hours >= 24
    for env in (
        {"KLIK_SIGNUP_CREDITS": "-1"},
        {"KLIK_SIGNUP_CREDITS": "lots"},
        {"KLIK_WALLET_SWEEP_SECONDS": "0"},
        {"KLIK_WALLET_IDEMPOTENCY_HOURS": "23"},
    ):
        with pytest.raises(ConfigError):
            WalletOptions.from_env(env)


async def test_every_change_publishes_wallet_changed(wallet: WalletStack) -> None:
    alice, bob = new_user(), new_user()
    await wallet.register(alice, bob)
    await wallet.wallet().Transfer(
        wallet_pb2.TransferRequest(to_user_id=bob, amount=30, idempotency_key="t"),
        metadata=wallet.user(alice),
        timeout=5,
    )
    first = await place(wallet, alice, 20)
    captured = await wallet.holds().CaptureHold(
        holds_pb2.CaptureHoldRequest(hold_id=first.id, amount=15, idempotency_key="c"),
        metadata=wallet.service(),
        timeout=5,
    )
    second = await place(wallet, alice, 10)
    await wallet.holds().ReleaseHold(
        holds_pb2.ReleaseHoldRequest(hold_id=second.id, idempotency_key="r"),
        metadata=wallet.service(),
        timeout=5,
    )

    expected = [
        ("signup_bonus", 100, 100, 0, 100),
        ("transfer_out", -30, 70, 0, 70),
        ("hold_placed", 20, 70, 20, 50),
        ("charge", -15, 55, 0, 55),
        ("hold_placed", 10, 55, 10, 45),
        ("hold_released", -10, 55, 0, 55),
    ]

    async def published() -> list[tuple[str, int, int, int, int]] | None:
        messages = await stream_messages(wallet.js, EVENTS_STREAM, event_subject("wallet.changed"))
        mine = []
        for message in messages:
            env = Envelope.FromString(message.data)
            if env.aggregate_id != alice:
                continue
            assert env.user_id == alice and env.type == "wallet.changed"
            change = WalletChanged()
            assert env.payload.Unpack(change)
            assert change.user_id == alice
            mine.append((change.kind, change.amount, change.balance, change.held, change.available))
            if change.kind == "charge":
                assert change.transaction_id == captured.transaction.id
            elif change.kind.startswith("hold_"):
                assert change.transaction_id == ""
        return mine if len(mine) >= len(expected) else None

    assert await wait_for(published, 20, interval=0.2) == expected


async def test_a_deleted_users_wallet_closes_and_frees_its_holds(wallet: WalletStack) -> None:
    alice, bob = new_user(), new_user()
    await wallet.register(alice, bob)
    hold = await place(wallet, alice, 40)
    await wallet.delete(alice)

    async def closed() -> bool:
        row = await wallet.wallet_row(alice)
        return row is not None and row.closed_at is not None

    await wait_for(closed, 30, message="alice's wallet closed")
    # (Her access tokens stop working too: kit.revocations, not the wallet's job.)
    capture = await failure(
        wallet.holds().CaptureHold(
            holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=40, idempotency_key="c"),
            metadata=wallet.service(),
            timeout=5,
        )
    )
    assert (capture.code, capture.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_ALREADY_RELEASED",
    )
    for call in (
        wallet.wallet().Transfer(
            wallet_pb2.TransferRequest(to_user_id=alice, amount=1, idempotency_key="t"),
            metadata=wallet.user(bob),
            timeout=5,
        ),
        wallet.holds().PlaceHold(
            holds_pb2.PlaceHoldRequest(
                user_id=alice, amount=1, idempotency_key="p", expires_at=hold.expires_at
            ),
            metadata=wallet.service(),
            timeout=5,
        ),
    ):
        refused = await failure(call)
        assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "WALLET_NOT_FOUND")
    report = await books(wallet.engine, [alice, bob])
    assert report.violations == []
    assert (report.balances[alice], report.held[alice]) == (100, 0)  # the ledger stays


async def test_a_user_deleted_before_the_wallet_opened_gets_none(wallet: WalletStack) -> None:
    carol = new_user()
    await wallet.delete(carol)

    async def tombstone() -> bool:
        row = await wallet.wallet_row(carol)
        return row is not None and row.closed_at is not None

    await wait_for(tombstone, 30, message="closed wallet recorded")
    late = envelope("user.registered", UserRegistered(user_id=carol), aggregate_id=carol)
    await publish_envelope(wallet.js, late)
    await wallet.drained()
    row = await wallet.wallet_row(carol)
    assert row is not None and row.closed_at is not None and row.balance == 0
    assert await rows_of(wallet, carol, "signup_bonus") == 0
