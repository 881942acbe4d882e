"""GetUsersSummary through real gRPC against the real auth service: sign-ups and
active accounts (signed in or refreshed) per UTC day, empty days as zeros, admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from sqlalchemy import update

from kit import db
from klik.auth.v1 import auth_pb2
from services.auth import store
from tests.auth.conftest import Auth, failure
from tests.auth.test_admin import with_role


async def summary(
    auth: Auth, metadata: tuple[tuple[str, str], ...], days: int
) -> list[tuple[str, int, int]]:
    reply = await auth.stub.GetUsersSummary(
        auth_pb2.GetUsersSummaryRequest(days=days), metadata=metadata, timeout=10
    )
    return [(d.date, d.signups, d.active_users) for d in reply.days]


async def test_users_summary_counts_signups_and_active_accounts_per_day(auth: Auth) -> None:
    admin = await auth.admin()
    alice, bob, old = await auth.register(), await auth.register(), await auth.register()
    # Bob refreshes twice and signs in again: still one active account today.
    await auth.refresh(await auth.refresh(bob))
    await auth.login(bob.user.email)
    now = datetime.now(UTC)
    async with db.session_factory(auth.engine)() as session, session.begin():
        # `old` signed up three days ago and was active the day before yesterday.
        await session.execute(
            update(store.users)
            .where(store.users.c.id == old.user.id)
            .values(created_at=now - timedelta(days=3))
        )
        await store.record_activity(session, old.user.id, now - timedelta(days=2))
        await store.record_activity(session, old.user.id, now - timedelta(days=2))

    days = await summary(auth, admin.metadata, 5)
    today = now.date()
    assert [d for d, _, _ in days] == [
        (today - timedelta(days=back)).isoformat() for back in range(4, -1, -1)
    ]
    # Today: admin, alice, bob signed up; those three and `old` signed in (register logs in).
    assert days[-1][1:] == (3, 4)
    assert days[-3][1:] == (0, 1)  # old, active two days ago
    assert days[-4][1:] == (1, 0)  # old's sign-up
    assert days[0][1:] == (0, 0)

    # A deleted account's days go with it.
    await auth.stub.DeleteUser(
        auth_pb2.DeleteUserRequest(user_id=alice.user.id), metadata=admin.metadata, timeout=10
    )
    assert (await summary(auth, admin.metadata, 1)) == [(today.isoformat(), 2, 3)]
    assert len(await summary(auth, admin.metadata, 0)) == 30

    for role in ("user", "moderator"):
        caller = await with_role(auth, admin, role)
        denied = await failure(
            auth.stub.GetUsersSummary(
                auth_pb2.GetUsersSummaryRequest(), metadata=caller.metadata, timeout=10
            )
        )
        assert denied == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    for days_asked in (-5, 367):
        bad = await failure(
            auth.stub.GetUsersSummary(
                auth_pb2.GetUsersSummaryRequest(days=days_asked),
                metadata=admin.metadata,
                timeout=10,
            )
        )
        assert bad == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_DAYS")
