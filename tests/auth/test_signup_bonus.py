"""The wallet side of email verification (KLIK_SIGNUP_BONUS_ON=verified, the
default), through the real wallet service and real NATS: `user.registered` opens an
empty wallet, `user.email_verified` pays the bonus once per user whatever the
redeliveries or later verifications, and a verification that arrives first opens the
wallet with it."""

from __future__ import annotations

from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from kit import bus
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import UserEmailVerified
from services.wallet import store
from services.wallet.settings import WalletOptions
from tests.helpers import envelope, publish_envelope, wait_for
from tests.wallet import conftest as wallet_fixtures
from tests.wallet.conftest import StartWallet, WalletStack, new_user

# The wallet's fixtures, run here as the wallet tests run them.
engine = wallet_fixtures.engine
start_wallet = wallet_fixtures.start_wallet


def verified(user_id: str, email: str = "a@example.com") -> Envelope:
    return envelope(
        "user.email_verified", UserEmailVerified(user_id=user_id, email=email), aggregate_id=user_id
    )


async def bonus_rows(wallet: WalletStack, user_id: str) -> int:
    async with wallet.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).where(
                store.ledger.c.user_id == user_id, store.ledger.c.kind == "signup_bonus"
            )
        )
    return int(count or 0)


async def drained(wallet: WalletStack) -> None:
    async def idle() -> bool:
        name = f"{wallet.options.consumer_prefix}-user-email-verified"
        try:
            info = await wallet.js.consumer_info(bus.EVENTS_STREAM, name)
        except NotFoundError:
            return False
        return not (info.num_pending or info.num_ack_pending)

    await wallet.drained()
    await wait_for(idle, 30, message="email-verified consumer drained")


async def test_the_bonus_waits_for_verification_and_is_paid_once(
    start_wallet: StartWallet,
) -> None:
    wallet = await start_wallet(signup_bonus_on="verified")
    alice = new_user()
    await wallet.register(alice)
    row = await wallet.wallet_row(alice)
    assert row is not None and row.balance == 0  # throwaway addresses earn nothing

    event = verified(alice)
    await publish_envelope(wallet.js, event)
    await publish_envelope(wallet.js, event, msg_id="redelivered")
    # A second verification (say, a changed address) under its own event id.
    await publish_envelope(wallet.js, verified(alice, "b@example.com"))
    await drained(wallet)
    assert await bonus_rows(wallet, alice) == 1
    row = await wallet.wallet_row(alice)
    assert row is not None and row.balance == WalletOptions().signup_credits


async def test_a_verification_before_the_registration_opens_the_wallet_with_the_bonus(
    start_wallet: StartWallet,
) -> None:
    wallet = await start_wallet(signup_bonus_on="verified")
    bob = new_user()
    await publish_envelope(wallet.js, verified(bob))
    await wallet.wait_for_wallets(bob)
    await wallet.register(bob)  # the late `user.registered` opens nothing more
    await drained(wallet)
    row = await wallet.wallet_row(bob)
    assert row is not None and row.balance == 100
    assert await bonus_rows(wallet, bob) == 1


async def test_registered_mode_pays_at_registration_and_ignores_verification(
    start_wallet: StartWallet,
) -> None:
    wallet = await start_wallet(signup_bonus_on="registered", signup_credits=7)
    carol = new_user()
    await wallet.register(carol)
    await publish_envelope(wallet.js, verified(carol))
    await wallet.drained()
    row = await wallet.wallet_row(carol)
    assert row is not None and row.balance == 7
    assert await bonus_rows(wallet, carol) == 1
