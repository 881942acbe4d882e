"""The ledger's use cases in-process on the test database: idempotency keys are kept
for their retention and then pruned, keys are scoped per caller and operation, and
a closed wallet reads as not found."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import db
from kit.errors import DomainError
from services.wallet.events import close_wallet, open_wallet
from services.wallet.ledger import Ledger
from services.wallet.store import idempotency_keys


async def opened(engine: AsyncEngine, *user_ids: str, now: datetime) -> None:
    async with db.session_factory(engine)() as session, session.begin():
        for user_id in user_ids:
            assert await open_wallet(session, user_id, 100, now)


async def keys(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(idempotency_keys)) or 0)


async def test_keys_are_kept_for_their_retention_then_pruned(engine: AsyncEngine) -> None:
    clock = [datetime.now(UTC)]
    ledger = Ledger(db.UnitOfWork(db.session_factory(engine)), clock=lambda: clock[0])
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    await opened(engine, alice, bob, now=clock[0])
    first = await ledger.transfer(alice, "k", sender=alice, recipient=bob, amount=10, note="")

    clock[0] += timedelta(hours=23, minutes=59)
    assert await ledger.prune_keys(timedelta(hours=24)) == 0
    again = await ledger.transfer(alice, "k", sender=alice, recipient=bob, amount=10, note="")
    assert again == first
    assert (await ledger.wallet(alice)).balance == 90

    clock[0] += timedelta(minutes=2)
    assert await ledger.prune_keys(timedelta(hours=24)) == 1
    assert await keys(engine) == 0
    # Forgotten: the same key is a new request now.
    later = await ledger.transfer(alice, "k", sender=alice, recipient=bob, amount=10, note="")
    assert later.id != first.id and later.balance_after == 80


async def test_pruning_works_through_any_backlog(engine: AsyncEngine) -> None:
    clock = [datetime.now(UTC)]
    ledger = Ledger(db.UnitOfWork(db.session_factory(engine)), clock=lambda: clock[0])
    admin, alice = "admin", str(uuid.uuid4())
    await opened(engine, alice, now=clock[0])
    for i in range(25):
        await ledger.grant(admin, f"g{i}", user_id=alice, amount=1, reason="", granted_by=admin)
    clock[0] += timedelta(days=3)
    assert await ledger.prune_keys(timedelta(hours=24), batch=10) == 25
    assert await keys(engine) == 0


async def test_keys_are_scoped_per_caller_and_operation(engine: AsyncEngine) -> None:
    ledger = Ledger(db.UnitOfWork(db.session_factory(engine)))
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    await opened(engine, alice, bob, now=datetime.now(UTC))
    far = datetime.now(UTC) + timedelta(hours=1)
    await ledger.transfer(alice, "same", sender=alice, recipient=bob, amount=1, note="")
    await ledger.transfer(bob, "same", sender=bob, recipient=alice, amount=2, note="")
    await ledger.grant("admin", "same", user_id=alice, amount=3, reason="", granted_by="admin")
    service = "service:generation"
    hold = await ledger.place_hold(service, "same", user_id=alice, amount=4, expires_at=far)
    captured = await ledger.capture_hold(service, "same", hold_id=hold.id, amount=4)
    assert captured.entry is not None
    assert (await ledger.wallet(alice)).balance == 100 - 1 + 2 + 3 - 4
    assert await keys(engine) == 5


async def test_a_closed_wallet_reads_as_not_found(engine: AsyncEngine) -> None:
    ledger = Ledger(db.UnitOfWork(db.session_factory(engine)))
    alice = str(uuid.uuid4())
    await opened(engine, alice, now=datetime.now(UTC))
    assert (await ledger.wallet(alice)).balance == 100
    async with db.session_factory(engine)() as session, session.begin():
        assert await close_wallet(session, alice)
    async with db.session_factory(engine)() as session, session.begin():
        assert not await close_wallet(session, alice)  # once
    with pytest.raises(DomainError) as error:
        await ledger.wallet(alice)
    assert error.value.reason == "WALLET_NOT_FOUND"
    page = await ledger.transactions(alice, before=None, limit=10)
    assert [entry.kind for entry in page.entries] == ["signup_bonus"]  # the ledger stays
