"""GetUsage and GetWalletSummary through real gRPC against the real wallet service:
credits spent per UTC day by generation kind (charges minus their refunds), revenue
and credits in per day, empty days as zeros, who may ask, and bad windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import grpc
from sqlalchemy import insert, update

from kit import db
from klik.wallet.v1 import holds_pb2, wallet_pb2
from services.wallet import store
from tests.wallet.conftest import WalletStack, new_user
from tests.wallet.support import failure
from tests.wallet.test_api import key, later


async def charge(stack: WalletStack, user_id: str, kind: str, amount: int) -> str:
    """A generation job's charge, as generation places and captures it: its row id."""
    hold = (
        await stack.holds().PlaceHold(
            holds_pb2.PlaceHoldRequest(
                user_id=user_id,
                amount=amount,
                idempotency_key=key(),
                expires_at=later(),
                reference="job",
                description=f"generation {kind} job j-{key()}",
            ),
            metadata=stack.service(),
            timeout=5,
        )
    ).hold
    captured = await stack.holds().CaptureHold(
        holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=amount, idempotency_key=key()),
        metadata=stack.service(),
        timeout=5,
    )
    transaction_id: str = captured.transaction.id
    return transaction_id


def by_kind(day: wallet_pb2.UsageDay | wallet_pb2.WalletSummaryDay) -> dict[str, int]:
    rows = day.by_kind if isinstance(day, wallet_pb2.UsageDay) else day.spent_by_kind
    return {k.kind: k.credits for k in rows}


async def test_usage_is_the_callers_own_spending_per_day_by_kind(wallet: WalletStack) -> None:
    alice, bob, admin = new_user(), new_user(), new_user()
    await wallet.register(alice, bob)
    stub, as_admin = wallet.wallet(), wallet.user(admin, "admin")
    await charge(wallet, alice, "IMAGE", 5)
    text = await charge(wallet, alice, "TEXT", 3)
    await charge(wallet, alice, "TEXT", 2)
    old = await charge(wallet, alice, "CHAT", 7)
    await charge(wallet, bob, "IMAGE", 50)  # someone else's: not in alice's usage
    # One charge refunded: it spent nothing. Another moved two days back.
    await stub.RefundCharge(
        wallet_pb2.RefundChargeRequest(
            user_id=alice, transaction_id=text, reason="provider glitch", idempotency_key=key()
        ),
        metadata=as_admin,
        timeout=5,
    )
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    async with db.session_factory(wallet.engine)() as session, session.begin():
        await session.execute(
            update(store.ledger).where(store.ledger.c.id == old).values(created_at=two_days_ago)
        )

    reply = await stub.GetUsage(
        wallet_pb2.GetUsageRequest(group_by="day", days=7), metadata=wallet.user(alice), timeout=5
    )
    today = datetime.now(UTC).date()
    assert [d.date for d in reply.days] == [
        (today - timedelta(days=back)).isoformat() for back in range(6, -1, -1)
    ]
    assert (reply.days[-1].credits, by_kind(reply.days[-1])) == (
        7,
        {"CHAT": 0, "IMAGE": 5, "TEXT": 2},
    )
    assert (reply.days[-3].credits, by_kind(reply.days[-3])) == (
        7,
        {"CHAT": 7, "IMAGE": 0, "TEXT": 0},
    )
    assert [d.credits for d in reply.days[:4]] == [0, 0, 0, 0]
    assert all(set(by_kind(d)) == {"CHAT", "IMAGE", "TEXT"} for d in reply.days)

    # The default window is 30 days; a user with no charges has zeros only.
    empty = await stub.GetUsage(wallet_pb2.GetUsageRequest(), metadata=wallet.user(bob), timeout=5)
    assert len(empty.days) == 30 and empty.days[-1].credits == 50

    for days in (-1, 367):
        bad = await failure(
            stub.GetUsage(
                wallet_pb2.GetUsageRequest(days=days), metadata=wallet.user(alice), timeout=5
            )
        )
        assert (bad.code, bad.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_DAYS")
    grouped = await failure(
        stub.GetUsage(
            wallet_pb2.GetUsageRequest(group_by="week"), metadata=wallet.user(alice), timeout=5
        )
    )
    assert (grouped.code, grouped.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_GROUP_BY")
    year = await stub.GetUsage(
        wallet_pb2.GetUsageRequest(days=366), metadata=wallet.user(alice), timeout=5
    )
    assert len(year.days) == 366
    anonymous = await failure(stub.GetUsage(wallet_pb2.GetUsageRequest(), timeout=5))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED


async def test_wallet_summary_is_every_wallets_money_per_day_for_admins(
    wallet: WalletStack,
) -> None:
    alice, bob, admin = new_user(), new_user(), new_user()
    await wallet.register(alice, bob)
    stub, as_admin = wallet.wallet(), wallet.user(admin, "admin")
    await charge(wallet, alice, "IMAGE", 5)
    await charge(wallet, bob, "AVATAR_VIDEO", 8)
    await stub.GrantCredits(
        wallet_pb2.GrantCreditsRequest(
            user_id=bob, amount=40, reason="prize", idempotency_key=key()
        ),
        metadata=as_admin,
        timeout=5,
    )
    now = datetime.now(UTC)
    async with db.session_factory(wallet.engine)() as session, session.begin():
        for n, (currency, amount, paid_at) in enumerate(
            [("eur", 500, now), ("eur", 900, now), ("usd", 300, now - timedelta(days=1))]
        ):
            await session.execute(
                insert(store.payments).values(
                    id=f"cs_test_{n}",
                    user_id=alice,
                    pack_id="starter",
                    credits=100,
                    amount=amount,
                    currency=currency,
                    status="paid",
                    payment_intent=f"pi_{n}",
                    created_at=paid_at,
                    paid_at=paid_at,
                )
            )
        # A session never paid: no revenue.
        await session.execute(
            insert(store.payments).values(
                id="cs_open",
                user_id=alice,
                pack_id="starter",
                credits=100,
                amount=10_000,
                currency="eur",
                status="open",
                payment_intent="",
                created_at=now,
            )
        )

    reply = await stub.GetWalletSummary(
        wallet_pb2.GetWalletSummaryRequest(days=3), metadata=as_admin, timeout=5
    )
    today: date = now.date()
    assert [d.date for d in reply.days] == [
        (today - timedelta(days=back)).isoformat() for back in (2, 1, 0)
    ]
    last, yesterday, first = reply.days[-1], reply.days[-2], reply.days[0]
    assert (last.credits_spent, by_kind(last)) == (13, {"AVATAR_VIDEO": 8, "IMAGE": 5})
    assert {r.currency: r.amount for r in last.revenue} == {"eur": 1400, "usd": 0}
    assert {r.currency: r.amount for r in yesterday.revenue} == {"eur": 0, "usd": 300}
    assert (last.credits_granted, last.credits_purchased) == (40, 0)
    assert (first.credits_spent, first.credits_granted, by_kind(first)) == (
        0,
        0,
        {"AVATAR_VIDEO": 0, "IMAGE": 0},
    )

    for role in ("user", "moderator", "premium"):
        denied = await failure(
            stub.GetWalletSummary(
                wallet_pb2.GetWalletSummaryRequest(), metadata=wallet.user(alice, role), timeout=5
            )
        )
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    bad = await failure(
        stub.GetWalletSummary(
            wallet_pb2.GetWalletSummaryRequest(days=400), metadata=as_admin, timeout=5
        )
    )
    assert (bad.code, bad.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_DAYS")
