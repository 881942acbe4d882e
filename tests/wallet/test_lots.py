"""Credit lots: each credit is a lot with a bucket and an optional expiry; holds and
charges spend the lot that expires first, then those that never expire; a lot's
unspent remainder leaves the balance at its `expires_at` as one `expiry` row
(not before, once, whoever sweeps); allowance is never transferred; and the books
keep sum(lot remaining) == balance throughout. In-process on the test database
(PostgreSQL or SQLite) with a clock the test moves, and through real gRPC."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from alembic import command
from alembic.config import Config
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Connection, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import db
from kit.errors import DomainError
from klik.wallet.v1 import wallet_pb2
from services.wallet import store
from services.wallet.changes import credit_wallet, take_back
from services.wallet.domain import Bucket, Kind
from services.wallet.events import open_wallet
from services.wallet.ledger import Ledger
from services.wallet.service import MIGRATIONS
from services.wallet.store import hold_lots, holds, ledger, lots, wallets
from tests.helpers import wait_for
from tests.wallet.conftest import WalletStack, new_user
from tests.wallet.support import books, failure

T0 = datetime(2030, 1, 1, tzinfo=UTC)
GENERATION = "service:generation"
ADMIN = "admin-1"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make_ledger(engine: AsyncEngine, clock: Callable[[], datetime]) -> Ledger:
    return Ledger(db.UnitOfWork(db.session_factory(engine)), clock=clock)


async def opened(engine: AsyncEngine, bonus: int = 0) -> str:
    user_id = str(uuid.uuid4())
    async with db.session_factory(engine)() as session, session.begin():
        assert await open_wallet(session, user_id, bonus, T0)
    return user_id


async def allowance(engine: AsyncEngine, user_id: str, amount: int, expires_at: datetime) -> None:
    """What the subscriptions' invoice.paid does: a period's allowance."""
    async with db.session_factory(engine)() as session, session.begin():
        wallet = await store.lock_wallet(session, user_id)
        assert wallet is not None
        await credit_wallet(
            session,
            wallet,
            amount,
            T0,
            kind=Kind.ALLOWANCE,
            bucket=Bucket.ALLOWANCE,
            expires_at=expires_at,
            reference="in_1",
            description="plan allowance",
        )


async def lot_state(engine: AsyncEngine, user_id: str) -> dict[str, tuple[int, int]]:
    """bucket → (remaining, reserved), summed over the wallet's lots."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(lots).where(lots.c.user_id == user_id))).all()
    found: dict[str, tuple[int, int]] = {}
    for row in rows:
        remaining, reserved = found.get(row.bucket, (0, 0))
        found[row.bucket] = (remaining + row.remaining, reserved + row.reserved)
    return found


async def expiry_rows(engine: AsyncEngine, user_id: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(ledger.c.amount)
            .where(ledger.c.user_id == user_id, ledger.c.kind == "expiry")
            .order_by(ledger.c.seq)
        )
        return [row.amount for row in rows]


async def balanced(engine: AsyncEngine, *user_ids: str) -> None:
    report = await books(engine, user_ids)
    assert report.violations == []


async def refusal(call: Awaitable[object]) -> str:
    try:
        await call
    except DomainError as error:
        return error.reason
    return "ok"


async def test_an_allowance_expires_at_its_expires_at_exactly_once(engine: AsyncEngine) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice = await opened(engine, bonus=100)
    end = T0 + timedelta(days=30)
    await allowance(engine, alice, 50, end)
    await book.debit(ADMIN, "d", user_id=alice, amount=20, reason="r", debited_by=ADMIN)

    clock.now = end - timedelta(microseconds=1)
    await book.expire_lots_due()
    assert (await book.wallet(alice)).balance == 130
    assert await expiry_rows(engine, alice) == []

    clock.now = end
    assert await book.expire_lots_due() >= 1
    assert (await book.wallet(alice)).balance == 100
    assert await expiry_rows(engine, alice) == [-30]
    await book.expire_lots_due()
    clock.now = end + timedelta(days=1)
    await book.expire_lots_due()
    assert await expiry_rows(engine, alice) == [-30]
    assert await lot_state(engine, alice) == {"bonus": (100, 0), "allowance": (0, 0)}
    await balanced(engine, alice)


async def test_credits_that_expire_are_spent_before_those_that_never_do(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice = await opened(engine, bonus=100)
    await allowance(engine, alice, 50, T0 + timedelta(days=30))
    await book.grant(
        ADMIN,
        "g",
        user_id=alice,
        amount=10,
        reason="promo",
        granted_by=ADMIN,
        expires_at=T0 + timedelta(days=7),
    )
    # The grant expires first, then the allowance, then the bonus (never).
    await book.debit(ADMIN, "d1", user_id=alice, amount=25, reason="r", debited_by=ADMIN)
    assert await lot_state(engine, alice) == {
        "bonus": (100, 0),
        "allowance": (35, 0),
        "grant": (0, 0),
    }
    await book.debit(ADMIN, "d2", user_id=alice, amount=40, reason="r", debited_by=ADMIN)
    assert await lot_state(engine, alice) == {
        "bonus": (95, 0),
        "allowance": (0, 0),
        "grant": (0, 0),
    }
    await balanced(engine, alice)


async def test_allowance_is_refused_for_transfer(engine: AsyncEngine) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice, bob = await opened(engine, bonus=10), await opened(engine)
    await allowance(engine, alice, 50, T0 + timedelta(days=30))

    def send(key: str, amount: int) -> Awaitable[object]:
        return book.transfer(alice, key, sender=alice, recipient=bob, amount=amount, note="")

    assert await refusal(send("t1", 20)) == "INSUFFICIENT_TRANSFERABLE_CREDITS"
    assert await refusal(send("t2", 61)) == "INSUFFICIENT_CREDITS"
    assert (await book.wallet(alice)).balance == 60
    # The bonus may be sent; the allowance stays.
    assert await refusal(send("t3", 10)) == "ok"
    assert await lot_state(engine, alice) == {"bonus": (0, 0), "allowance": (50, 0)}
    assert await lot_state(engine, bob) == {"grant": (10, 0)}
    assert await refusal(send("t4", 1)) == "INSUFFICIENT_TRANSFERABLE_CREDITS"
    await balanced(engine, alice, bob)


async def test_a_transfer_keeps_the_expiry_of_the_credits_it_sends(engine: AsyncEngine) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice, bob = await opened(engine, bonus=100), await opened(engine)
    week = T0 + timedelta(days=7)
    await book.grant(
        ADMIN, "g", user_id=alice, amount=10, reason="r", granted_by=ADMIN, expires_at=week
    )
    await book.transfer(alice, "t", sender=alice, recipient=bob, amount=25, note="")
    _, summary = await book.credits(bob)
    assert (summary.next_expiry_amount, summary.next_expiry_at) == (10, week)
    clock.now = week
    await book.expire_lots_due()
    assert (await book.wallet(bob)).balance == 15
    assert await expiry_rows(engine, bob) == [-10]
    await balanced(engine, alice, bob)


async def test_a_hold_spanning_two_lots_charges_the_first_to_expire(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice = await opened(engine, bonus=100)
    await allowance(engine, alice, 30, T0 + timedelta(days=30))
    hold = await book.place_hold(
        GENERATION, "h", user_id=alice, amount=50, expires_at=T0 + timedelta(hours=1)
    )
    assert await lot_state(engine, alice) == {"bonus": (100, 20), "allowance": (30, 30)}
    async with engine.connect() as conn:
        reserved = {
            row.amount
            for row in await conn.execute(select(hold_lots).where(hold_lots.c.hold_id == hold.id))
        }
    assert reserved == {30, 20}
    captured = await book.capture_hold(GENERATION, "c", hold_id=hold.id, amount=40)
    assert captured.entry is not None and captured.entry.amount == -40
    assert await lot_state(engine, alice) == {"bonus": (90, 0), "allowance": (0, 0)}
    await balanced(engine, alice)


@pytest.mark.parametrize("resolve", ["capture", "release", "hold expires"])
async def test_a_lot_that_expires_while_held_keeps_what_the_hold_reserved(
    engine: AsyncEngine, resolve: str
) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice = await opened(engine, bonus=100)
    end = T0 + timedelta(hours=1)
    await allowance(engine, alice, 50, end)
    hold = await book.place_hold(
        GENERATION, "h", user_id=alice, amount=30, expires_at=T0 + timedelta(hours=2)
    )
    clock.now = end
    await book.expire_lots_due()
    # The unreserved 20 expired; the 30 the job holds stay with its hold.
    assert await expiry_rows(engine, alice) == [-20]
    assert (await book.wallet(alice)).balance == 130
    assert await lot_state(engine, alice) == {"bonus": (100, 0), "allowance": (30, 30)}

    if resolve == "capture":
        captured = await book.capture_hold(GENERATION, "c", hold_id=hold.id, amount=10)
        # The 10 spent come out of the expired lot; the 20 given back expire at once.
        assert captured.entry is not None and captured.entry.balance_after == 120
        assert await expiry_rows(engine, alice) == [-20, -20]
    elif resolve == "release":
        await book.release_hold(GENERATION, "r", hold_id=hold.id)
        assert await expiry_rows(engine, alice) == [-20, -30]
    else:
        clock.now = T0 + timedelta(hours=2)
        assert await book.expire_due() >= 1
        assert await expiry_rows(engine, alice) == [-20, -30]
    await book.expire_lots_due()
    wallet = await book.wallet(alice)
    assert (wallet.balance, wallet.held) == (100, 0)
    assert await lot_state(engine, alice) == {"bonus": (100, 0), "allowance": (0, 0)}
    await balanced(engine, alice)


async def test_credits_past_expiry_are_never_spent_before_the_sweeper_runs(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice = await opened(engine, bonus=0)
    await allowance(engine, alice, 50, T0 + timedelta(hours=1))
    clock.now = T0 + timedelta(hours=1)
    # No sweep yet: the hold finds the lot due, records its expiry and refuses.
    outcome = await refusal(
        book.place_hold(
            GENERATION, "h", user_id=alice, amount=10, expires_at=clock.now + timedelta(hours=1)
        )
    )
    assert outcome == "INSUFFICIENT_CREDITS"
    # (The refusal rolled its transaction back: nothing written.)
    assert await expiry_rows(engine, alice) == []
    await book.grant(ADMIN, "g", user_id=alice, amount=10, reason="r", granted_by=ADMIN)
    assert (await book.wallet(alice)).balance == 60
    # A hold that succeeds writes the expiry it found due, in its own transaction.
    await book.place_hold(
        GENERATION, "h2", user_id=alice, amount=10, expires_at=clock.now + timedelta(hours=1)
    )
    assert await expiry_rows(engine, alice) == [-50]
    assert await lot_state(engine, alice) == {"allowance": (0, 0), "grant": (10, 10)}
    await book.expire_lots_due()
    assert await expiry_rows(engine, alice) == [-50]
    await balanced(engine, alice)


async def test_concurrent_sweeps_by_two_ledgers_write_one_expiry_row(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    users = [await opened(engine, bonus=5) for _ in range(6)]
    for user_id in users:
        await allowance(engine, user_id, 40, T0 + timedelta(minutes=1))
    clock.now = T0 + timedelta(minutes=1)
    first, second = make_ledger(engine, clock), make_ledger(engine, clock)
    await asyncio.gather(first.expire_lots_due(), second.expire_lots_due())
    for user_id in users:
        assert await expiry_rows(engine, user_id) == [-40]
        assert (await first.wallet(user_id)).balance == 5
    await balanced(engine, *users)


async def test_credits_taken_back_come_out_of_that_purchase_first(engine: AsyncEngine) -> None:
    alice = await opened(engine, bonus=0)
    async with db.session_factory(engine)() as session, session.begin():
        wallet = await store.lock_wallet(session, alice)
        assert wallet is not None
        for reference in ("cs_1", "cs_2"):
            wallet, _ = await credit_wallet(
                session,
                wallet,
                100,
                T0,
                kind=Kind.PURCHASE,
                bucket=Bucket.PURCHASE,
                reference=reference,
            )
    await allowance(engine, alice, 30, T0 + timedelta(days=30))
    async with db.session_factory(engine)() as session, session.begin():
        wallet = await store.lock_wallet(session, alice)
        assert wallet is not None
        back = await take_back(session, wallet, 60, Kind.PURCHASE_REFUNDED, "cs_2", "", T0)
    assert (back.taken, back.owed) == (60, 0)
    async with engine.connect() as conn:
        query = select(lots.c.reference, lots.c.remaining).where(lots.c.user_id == alice)
        left = {row.reference: row.remaining for row in await conn.execute(query)}
    assert left == {"cs_1": 100, "cs_2": 40, "in_1": 30}
    await balanced(engine, alice)


async def test_a_refunded_charge_paid_with_allowance_stays_allowance(engine: AsyncEngine) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice, bob = await opened(engine, bonus=0), await opened(engine)
    await allowance(engine, alice, 30, T0 + timedelta(days=30))
    hold = await book.place_hold(
        GENERATION, "h", user_id=alice, amount=20, expires_at=T0 + timedelta(hours=1)
    )
    captured = await book.capture_hold(GENERATION, "c", hold_id=hold.id, amount=20)
    assert captured.entry is not None
    await book.refund_charge(
        ADMIN, "rf", user_id=alice, transaction_id=captured.entry.id, reason="r", refunded_by=ADMIN
    )
    assert await lot_state(engine, alice) == {"allowance": (30, 0)}
    outcome = await refusal(
        book.transfer(alice, "t", sender=alice, recipient=bob, amount=1, note="")
    )
    assert outcome == "INSUFFICIENT_TRANSFERABLE_CREDITS"
    # The refund never expires (the allowance's own lot does).
    clock.now = T0 + timedelta(days=30)
    await book.expire_lots_due()
    assert (await book.wallet(alice)).balance == 20
    await balanced(engine, alice)


async def test_a_grant_must_expire_in_the_future(engine: AsyncEngine) -> None:
    clock = Clock()
    book = make_ledger(engine, clock)
    alice = await opened(engine)
    outcome = await refusal(
        book.grant(ADMIN, "g", user_id=alice, amount=5, reason="r", granted_by=ADMIN, expires_at=T0)
    )
    assert outcome == "INVALID_ARGUMENT"
    assert (await book.wallet(alice)).balance == 0


# ---- through the service: GrantCredits with an expiry, Wallet, the sweeper --------------


def stamp(moment: datetime) -> Timestamp:
    made = Timestamp()
    made.FromDatetime(moment)
    return made


async def test_granted_credits_expire_by_the_services_own_sweeper(wallet: WalletStack) -> None:
    alice, bob, admin = new_user(), new_user(), new_user()
    await wallet.register(alice, bob)
    expires = datetime.now(UTC) + timedelta(seconds=2)
    grant = await wallet.wallet().GrantCredits(
        wallet_pb2.GrantCreditsRequest(
            user_id=alice, amount=40, reason="promo", idempotency_key="g", expires_at=stamp(expires)
        ),
        metadata=wallet.user(admin, "admin"),
        timeout=5,
    )
    assert (grant.transaction.kind, grant.transaction.balance_after) == ("grant", 140)
    seen = (
        await wallet.wallet().GetWallet(
            wallet_pb2.GetWalletRequest(), metadata=wallet.user(alice), timeout=5
        )
    ).wallet
    assert (seen.buckets.bonus, seen.buckets.grant, seen.buckets.allowance) == (100, 40, 0)
    assert seen.next_expiry.amount == 40
    assert seen.next_expiry.expires_at.ToDatetime(UTC) == expires

    async def expired() -> wallet_pb2.Wallet | None:
        reply = await wallet.wallet().GetWallet(
            wallet_pb2.GetWalletRequest(), metadata=wallet.user(alice), timeout=5
        )
        return reply.wallet if reply.wallet.balance == 100 else None

    after = await wait_for(expired, 30, message="the granted credits expired")
    assert after is not None
    assert not after.HasField("next_expiry") and after.buckets.grant == 0
    rows = await wallet.wallet().ListTransactions(
        wallet_pb2.ListTransactionsRequest(), metadata=wallet.user(alice), timeout=5
    )
    newest = rows.transactions[0]
    assert (newest.kind, newest.amount, newest.balance_after) == ("expiry", -40, 100)
    await balanced(wallet.engine, alice, bob)


async def test_grant_credits_refuses_an_expiry_in_the_past(wallet: WalletStack) -> None:
    alice, admin = new_user(), new_user()
    await wallet.register(alice)
    refused = await failure(
        wallet.wallet().GrantCredits(
            wallet_pb2.GrantCreditsRequest(
                user_id=alice,
                amount=40,
                reason="promo",
                idempotency_key="g",
                expires_at=stamp(datetime.now(UTC) - timedelta(minutes=1)),
            ),
            metadata=wallet.user(admin, "admin"),
            timeout=5,
        )
    )
    assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert refused.metadata == {"field": "expires_at"}


async def test_transfer_of_allowance_is_refused_over_grpc(wallet: WalletStack) -> None:
    alice, bob = new_user(), new_user()
    await wallet.register(alice, bob)
    await wallet.wallet().Transfer(
        wallet_pb2.TransferRequest(to_user_id=bob, amount=100, idempotency_key="all"),
        metadata=wallet.user(alice),
        timeout=5,
    )
    await allowance(wallet.engine, alice, 50, datetime.now(UTC) + timedelta(days=30))
    refused = await failure(
        wallet.wallet().Transfer(
            wallet_pb2.TransferRequest(to_user_id=bob, amount=10, idempotency_key="more"),
            metadata=wallet.user(alice),
            timeout=5,
        )
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_TRANSFERABLE_CREDITS",
    )
    assert refused.metadata == {"required": "10", "transferable": "0"}
    await balanced(wallet.engine, alice, bob)


# ---- the migration: existing wallets get one lot ---------------------------------------------


def _upgrade(conn: Connection, target: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join((str(MIGRATIONS / "versions"), str(db.KIT_VERSIONS)))
    )
    config.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(config, target)


async def test_the_migration_gives_each_wallet_one_lot_of_its_balance(
    make_database_url: Callable[[], str],
) -> None:
    engine = db.make_engine(make_database_url())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, "wallet_0003")
            rich, empty = str(uuid.uuid4()), str(uuid.uuid4())
            for user_id, balance, held in ((rich, 120, 30), (empty, 0, 0)):
                await conn.execute(
                    insert(wallets).values(
                        user_id=user_id, balance=balance, held=held, created_at=T0, updated_at=T0
                    )
                )
            await conn.execute(
                insert(holds).values(
                    id=str(uuid.uuid4()),
                    user_id=rich,
                    amount=30,
                    status="open",
                    captured_amount=0,
                    expires_at=T0 + timedelta(hours=1),
                    created_at=T0,
                    reference="",
                    description="",
                )
            )
        await db.migrate(engine, MIGRATIONS)
        assert await lot_state(engine, rich) == {"grant": (120, 30)}
        assert await lot_state(engine, empty) == {}
        async with engine.connect() as conn:
            expiry = await conn.scalar(select(lots.c.expires_at).where(lots.c.user_id == rich))
            reserved = await conn.scalar(select(hold_lots.c.amount))
        assert expiry is None and reserved == 30
        # Spending after the upgrade draws from the migrated lot.
        book = make_ledger(engine, Clock())
        await book.debit(ADMIN, "d", user_id=rich, amount=90, reason="r", debited_by=ADMIN)
        assert await lot_state(engine, rich) == {"grant": (30, 30)}
        # And back down: the lots go, the wallets stay.
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: _upgrade(sync, "wallet_0003", down=True))
            assert await conn.run_sync(lambda sync: inspect(sync).has_table("lots")) is False
            assert (
                await conn.scalar(select(wallets.c.balance).where(wallets.c.user_id == rich)) == 30
            )
    finally:
        await engine.dispose()
