"""Money in under load (issue 15): 200 purchases and spends at once across 20 users,
each purchase a real Checkout paid on the Stripe sandbox and granted by its signed
webhook through the gateway, each spend a hold and its capture over real gRPC, with
credits that expire in the mix. Afterwards every balance is its purchases minus its
captures minus its expiries, to the credit, and every ledger invariant holds."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import func, select

from kit.db import UnitOfWork, session_factory
from klik.wallet.v1 import holds_pb2
from services.wallet.ledger import Ledger
from services.wallet.store import ledger
from tests.wallet.money import Money, money
from tests.wallet.support import books

__all__ = ["money"]  # the fixture

USERS, PURCHASES, SPENDS = 20, 5, 5  # 100 purchases and 100 spends
BONUS, PACK = 100, 100  # the signup bonus; the `starter` pack's credits
EXPIRING = 30  # an admin grant per user that expires in an hour


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


async def buy(money: Money, user: str) -> None:
    made = await money.checkout(user, f"buy-{uuid.uuid4()}")
    paid = await money.act(made["session_id"], "pay")
    assert paid.status_code == 200, paid.text


async def spend(money: Money, user: str, amount: int, captured: int) -> int:
    """Hold `amount`, capture `captured` of it; the credits captured."""
    holds = money.wallet.holds()
    service = money.wallet.service()
    placed = await holds.PlaceHold(
        holds_pb2.PlaceHoldRequest(
            user_id=user,
            amount=amount,
            idempotency_key=str(uuid.uuid4()),
            expires_at=timestamp(datetime.now(UTC) + timedelta(minutes=10)),
            reference=f"job-{uuid.uuid4()}",
            description="generation TEXT job",
        ),
        metadata=service,
        timeout=60,
    )
    await holds.CaptureHold(
        holds_pb2.CaptureHoldRequest(
            hold_id=placed.hold.id, amount=captured, idempotency_key=str(uuid.uuid4())
        ),
        metadata=service,
        timeout=60,
    )
    return captured


async def rows(money: Money, user: str, kind: str) -> tuple[int, int]:
    """(how many `kind` rows the user's ledger has, their amounts' sum)."""
    async with money.wallet.engine.connect() as conn:
        found = (
            await conn.execute(
                select(func.count(), func.coalesce(func.sum(ledger.c.amount), 0)).where(
                    ledger.c.user_id == user, ledger.c.kind == kind
                )
            )
        ).one()
    return int(found[0]), int(found[1])


async def test_200_concurrent_purchases_and_spends_balance_to_the_credit(money: Money) -> None:
    users = [await money.user() for _ in range(USERS)]
    admin = money.auth("admin-1", "admin")
    expires = datetime.now(UTC) + timedelta(hours=1)
    for user in users:
        granted = await money.gateway.post(
            f"/v1/admin/wallets/{user}/credits",
            json={
                "amount": EXPIRING,
                "reason": "a trial",
                "idempotency_key": f"trial-{user}",
                "expires_at": expires.isoformat(),
            },
            headers=admin,
        )
        assert granted.status_code == 200, granted.text
    chance = random.Random(15)
    # Spends are small enough that the bonus alone covers them, whenever the
    # purchases' webhooks land: none is refused, so each user's captures are known.
    plan = {
        user: [
            (amount, chance.randint(0, amount)) for amount in chance.choices(range(1, 21), k=SPENDS)
        ]
        for user in users
    }
    work = [buy(money, user) for user in users for _ in range(PURCHASES)]
    spends = [spend(money, user, a, c) for user in users for a, c in plan[user]]
    mixed = work + spends
    chance.shuffle(mixed)
    await asyncio.gather(*mixed)
    await money.delivered()
    # The hour passes: what is left of each trial grant expires, once.
    sweeper = Ledger(UnitOfWork(session_factory(money.wallet.engine)), clock=lambda: expires)
    swept = await sweeper.expire_lots_due(batch=USERS)
    assert await sweeper.expire_lots_due(batch=USERS) == 0, "each remainder expires once"
    expiring_users = 0
    for user in users:
        purchases, credited = await rows(money, user, "purchase")
        assert (purchases, credited) == (PURCHASES, PURCHASES * PACK), "each purchase once"
        # What the spends did not take of the trial grant left as one expiry row.
        expiries, expired = await rows(money, user, "expiry")
        assert (expiries, expired) == (0, 0) or (expiries == 1 and -EXPIRING <= expired < 0)
        expiring_users += expiries
        captured = sum(c for _, c in plan[user])
        if captured < EXPIRING:
            assert expiries == 1, "a grant the spends could not use up expires"
        wallet = await money.wallet_of(user)
        assert int(wallet["balance"]) == BONUS + EXPIRING + PURCHASES * PACK - captured + expired
        assert wallet.get("held", "0") == "0"
    assert swept == expiring_users
    assert (await books(money.wallet.engine, users)).violations == []
