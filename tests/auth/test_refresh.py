"""Refresh-token families through the real service: rotation, reuse detection, a
concurrent double refresh, idle and absolute expiry."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import grpc
from sqlalchemy import select

from klik.auth.v1 import auth_pb2
from services.auth import store
from tests.auth.conftest import Auth, failure
from tests.helpers import wait_for

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


async def test_refresh_spends_the_token_and_issues_the_next(auth: Auth) -> None:
    first = await auth.register()
    second = await auth.refresh(first)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.user == first.user
    assert (await auth.me(second.access_token)).id == first.user.id
    third = await auth.refresh(second)
    assert (await auth.me(third.access_token)).id == first.user.id

    # Only digests are stored.
    async with auth.engine.connect() as conn:
        stored = set(await conn.scalars(select(store.refresh_tokens.c.token_hash)))
    assert hashlib.sha256(third.refresh_token.encode()).hexdigest() in stored
    assert not {first.refresh_token, second.refresh_token, third.refresh_token} & stored


async def test_reusing_a_spent_token_ends_the_whole_family(auth: Auth) -> None:
    stolen = await auth.register()
    legitimate = await auth.refresh(stolen)
    newer = await auth.refresh(legitimate)
    unrelated = await auth.login(stolen.user.email)

    assert await failure(auth.refresh(stolen)) == (UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    # Every token of the family is dead now, the newest included ...
    assert await failure(auth.refresh(newer)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    # ... and presenting a spent one again is still reuse.
    assert await failure(auth.refresh(legitimate)) == (UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    # Another login's family is untouched.
    await auth.refresh(unrelated)


async def test_concurrent_double_refresh_has_exactly_one_winner(auth: Auth) -> None:
    for _ in range(3):
        session = await auth.register()
        results = await asyncio.gather(
            auth.refresh(session), auth.refresh(session), return_exceptions=True
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert losers[0].code() == UNAUTHENTICATED
        # The loser is treated as reuse: the family, the winner's new token included, ends.
        assert await failure(auth.refresh(winners[0])) == (
            UNAUTHENTICATED,
            "INVALID_REFRESH_TOKEN",
        )


async def test_unknown_and_empty_refresh_tokens(auth: Auth) -> None:
    for token in ("", "not-a-token", "A" * 43):
        assert await failure(
            auth.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token), timeout=10)
        ) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")


async def test_idle_expiry(start_auth: object) -> None:
    auth: Auth = await start_auth(  # type: ignore[operator]
        KLIK_REFRESH_IDLE_SECONDS="1", KLIK_REFRESH_ABSOLUTE_SECONDS="3600"
    )
    session = await auth.refresh(await auth.register())  # used in time, it rotates
    async with auth.engine.connect() as conn:
        row = (
            await conn.execute(
                select(store.refresh_tokens.c.issued_at, store.refresh_tokens.c.expires_at).where(
                    store.refresh_tokens.c.token_hash
                    == hashlib.sha256(session.refresh_token.encode()).hexdigest()
                )
            )
        ).one()
    issued_at, expires_at = (_utc(value) for value in row)
    assert (expires_at - issued_at).total_seconds() == 1
    # Left unused past its idle expiry, it is refused (and not counted as reuse).
    await wait_for(lambda: datetime.now(UTC) > expires_at, message="idle time passes")
    assert await failure(auth.refresh(session)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_absolute_expiry_holds_however_active_the_family(start_auth: object) -> None:
    auth: Auth = await start_auth(  # type: ignore[operator]
        KLIK_REFRESH_IDLE_SECONDS="2", KLIK_REFRESH_ABSOLUTE_SECONDS="2"
    )
    session = await auth.register()
    refreshes = 0

    async def family_over() -> bool:
        nonlocal session, refreshes
        try:
            session = await auth.refresh(session)  # kept active all along
            refreshes += 1
            return False
        except grpc.aio.AioRpcError as error:
            return bool(error.code() == UNAUTHENTICATED)

    await wait_for(family_over, within=10, interval=0.2, message="family reaches absolute expiry")
    assert refreshes >= 1
    assert await failure(auth.refresh(session)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
