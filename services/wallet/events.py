"""Events the wallet service publishes (through the outbox) and consumes.

Publishes `wallet.changed` (and `wallet.low_balance` when a change crosses the
owner's threshold) in the transaction of every change to a wallet (changes.py).
Consumes `user.registered` (open the wallet: empty, or with the signup
bonus when KLIK_SIGNUP_BONUS_ON=registered), `user.email_verified` (the signup bonus,
once per user, when KLIK_SIGNUP_BONUS_ON=verified, the default) and `user.deleted`
(close it). Each consumed event is applied in the consumer's
transaction, which also records its id, so a redelivery changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.consumer import EventConsumer, PoisonMessage
from kit.server import Resources
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import UserDeleted, UserEmailVerified, UserRegistered
from services.wallet import domain, store
from services.wallet.changes import credit_wallet, resolve_hold
from services.wallet.domain import Bucket, Change, Kind, Wallet
from services.wallet.settings import WalletOptions

USER_REGISTERED = event_type_of(UserRegistered)
USER_DELETED = event_type_of(UserDeleted)
USER_EMAIL_VERIFIED = event_type_of(UserEmailVerified)


async def open_wallet(
    session: AsyncSession, user_id: str, bonus: int, now: datetime | None = None
) -> bool:
    """Open the user's wallet with `bonus` credits (a `signup_bonus` row). Returns
    whether it opened one: a user's wallet is opened once, whatever happens to the
    event (a redelivery, a re-publish under another message id): the wallet's
    primary key makes a second open insert nothing, and the bonus is written only
    by the insert that created the wallet. A wallet closed before it was opened
    (`user.deleted` consumed first) stays closed."""
    now = now or datetime.now(UTC)
    wallet = Wallet(user_id=user_id, balance=0, held=0, created_at=now, updated_at=now)
    if not await store.create_wallet(session, wallet):
        return False
    if bonus > 0:
        await _bonus(session, wallet, bonus, now)
    return True


async def _bonus(session: AsyncSession, wallet: Wallet, bonus: int, now: datetime) -> None:
    """The signup bonus: a `signup_bonus` row and a lot of bucket `bonus`."""
    await credit_wallet(
        session,
        wallet,
        bonus,
        now,
        kind=Kind.SIGNUP_BONUS,
        bucket=Bucket.BONUS,
        description="signup bonus",
    )


async def grant_signup_bonus(
    session: AsyncSession, user_id: str, bonus: int, now: datetime | None = None
) -> bool:
    """Pay the signup bonus unless the user ever got one (a `signup_bonus` row):
    once per user, however often their address is verified or the event delivered.
    A wallet `user.registered` has not opened yet is opened with it; a closed one
    gets nothing. Returns whether it paid."""
    now = now or datetime.now(UTC)
    if bonus <= 0:
        return False
    wallet = await store.lock_wallet(session, user_id)
    if wallet is None:
        if await open_wallet(session, user_id, bonus, now):
            return True
        wallet = await store.lock_wallet(session, user_id)  # opened meanwhile
        assert wallet is not None
    paid = await session.scalar(
        select(store.ledger.c.id)
        .where(store.ledger.c.user_id == user_id, store.ledger.c.kind == str(Kind.SIGNUP_BONUS))
        .limit(1)
    )
    if not wallet.is_open or paid is not None:
        return False
    await _bonus(session, wallet, bonus, now)
    return True


async def close_wallet(session: AsyncSession, user_id: str, now: datetime | None = None) -> bool:
    """Close the user's wallet: its open holds are released (a deleted user is
    charged nothing more) and it takes no more money. Its ledger stays, as the
    record of what happened. Returns whether it closed an open wallet. A user
    deleted before the wallet opened gets a closed, empty wallet, so a late
    `user.registered` does not open one."""
    now = now or datetime.now(UTC)
    wallet = await store.lock_wallet(session, user_id)
    if wallet is None:
        tombstone = Wallet(user_id, 0, 0, created_at=now, updated_at=now, closed_at=now)
        if await store.create_wallet(session, tombstone):
            return False
        # `user.registered` opened it meanwhile: close that one.
        wallet = await store.lock_wallet(session, user_id)
        assert wallet is not None
    if not wallet.is_open:
        return False
    for hold in await store.lock_open_holds(session, user_id):
        resolution = domain.close_release(hold, wallet, now)
        wallet = await resolve_hold(session, resolution, Change.HOLD_RELEASED, now)
    await store.save_wallet(session, replace(wallet, updated_at=now, closed_at=now))
    return True


def _user_id(user_id: str) -> str:
    if not domain.plausible_id(user_id):
        # No retry can fix it: straight to the dead-letter subject.
        raise PoisonMessage(f"event names no valid user id: {user_id!r}")
    return user_id


def consumers(resources: Resources, options: WalletOptions) -> Sequence[EventConsumer]:
    """The durable consumers this service runs (replicas share them)."""
    assert resources.js is not None

    on_registration = options.signup_bonus_on == "registered"

    async def registered(session: AsyncSession, envelope: Envelope, event: UserRegistered) -> None:
        bonus = options.signup_credits if on_registration else 0
        await open_wallet(session, _user_id(event.user_id), bonus)

    async def verified(session: AsyncSession, envelope: Envelope, event: UserEmailVerified) -> None:
        await grant_signup_bonus(session, _user_id(event.user_id), options.signup_credits)

    async def deleted(session: AsyncSession, envelope: Envelope, event: UserDeleted) -> None:
        await close_wallet(session, _user_id(event.user_id))

    return (
        EventConsumer(
            resources.engine,
            resources.js,
            consumer=f"{options.consumer_prefix}-user-registered",
            event_type=USER_REGISTERED,
            handler=registered,
            payload_type=UserRegistered,
        ),
        EventConsumer(
            resources.engine,
            resources.js,
            consumer=f"{options.consumer_prefix}-user-deleted",
            event_type=USER_DELETED,
            handler=deleted,
            payload_type=UserDeleted,
        ),
        *(
            ()
            if on_registration
            else (
                EventConsumer(
                    resources.engine,
                    resources.js,
                    consumer=f"{options.consumer_prefix}-user-email-verified",
                    event_type=USER_EMAIL_VERIFIED,
                    handler=verified,
                    payload_type=UserEmailVerified,
                ),
            )
        ),
    )
