"""The admin RPCs through the real service: who may call them, ListUsers paging,
SetRole and DeleteUser with their events, and a deleted user's tokens failing in
auth and in another service (through the kit's revocation feed)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import jwt
from nats.js import JetStreamContext

from kit import paging
from kit.config import ServiceSettings
from kit.errors import error_details
from kit.server import Resources, Server, ServiceParts, ServiceSpec
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from klik.events.v1.events_pb2 import UserDeleted, UserRoleChanged
from services.auth import store
from services.auth.api import LIST_USERS
from services.auth.domain import Account
from tests.auth.conftest import (
    Auth,
    AuthStack,
    Session,
    bearer,
    failure,
    failure_details,
    published,
)
from tests.helpers import wait_for

# The kit's tables only (and the integration tests' own): all this service needs.
TEST_MIGRATIONS = Path(__file__).resolve().parents[1] / "integration" / "migrations"
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


async def with_role(auth: Auth, admin: Session, role: str) -> Session:
    session = await auth.register()
    await auth.stub.SetRole(
        auth_pb2.SetRoleRequest(user_id=session.user.id, role=role),
        metadata=admin.metadata,
        timeout=10,
    )
    return await auth.login(session.user.email)


async def test_admin_rpcs_refuse_everyone_but_admins(auth: Auth) -> None:
    admin = await auth.admin()
    victim = await auth.register()
    calls: dict[str, Callable[[Any], Any]] = {
        "ListUsers": lambda md: auth.stub.ListUsers(auth_pb2.ListUsersRequest(), metadata=md),
        "SetRole": lambda md: auth.stub.SetRole(
            auth_pb2.SetRoleRequest(user_id=victim.user.id, role="admin"), metadata=md
        ),
        "DeleteUser": lambda md: auth.stub.DeleteUser(
            auth_pb2.DeleteUserRequest(user_id=victim.user.id), metadata=md
        ),
    }
    for role in ("user", "premium", "moderator"):
        caller = await with_role(auth, admin, role)
        assert jwt.decode(caller.access_token, options={"verify_signature": False})["role"] == role
        for name, call in calls.items():
            assert await failure(call(caller.metadata)) == (DENIED, "ROLE_REQUIRED"), (role, name)
    for name, call in calls.items():
        assert await failure(call(())) == (UNAUTHENTICATED, "UNAUTHENTICATED"), name
    # Nothing happened to the victim.
    assert (await auth.me(victim.access_token)).role == "user"
    # And an admin may.
    listed = await calls["ListUsers"](admin.metadata)
    assert victim.user.id in {user.id for user in listed.users}


async def test_list_users_pages_newest_first(auth: Auth) -> None:
    admin = await auth.admin()
    base = datetime.now(UTC) - timedelta(days=1)
    async with auth.uow.write() as session:
        for i in range(130):
            await store.insert_account(
                session,
                Account(
                    id=str(uuid.uuid4()),
                    email=f"bulk{i}@example.com",
                    display_name=f"Bulk {i}",
                    role="user",
                    password_hash="$argon2id$not-a-real-hash",
                    # Pairs share a timestamp: the id breaks the tie, nothing is skipped.
                    created_at=base + timedelta(seconds=i // 2),
                ),
            )

    async def page(size: int, token: str = "") -> auth_pb2.ListUsersResponse:
        reply: auth_pb2.ListUsersResponse = await auth.stub.ListUsers(
            auth_pb2.ListUsersRequest(page_size=size, page_token=token),
            metadata=admin.metadata,
            timeout=10,
        )
        return reply

    first = await page(0)
    assert len(first.users) == 20 and first.next_page_token  # default size
    assert first.users[0].id == admin.user.id  # newest first
    assert len((await page(1000)).users) == 100  # clamped

    seen: list[auth_pb2.User] = []
    token = ""
    while True:
        reply = await page(17, token)
        seen.extend(reply.users)
        token = reply.next_page_token
        if not token:
            break
    assert len(seen) == 131 and len({user.id for user in seen}) == 131
    keys = [(user.created_at.ToDatetime(), user.id) for user in seen]
    assert keys == sorted(keys, reverse=True)

    for bad in ("garbage", "eyJyIjoid2FsbGV0Lkxpc3QiLCJwIjp7fX0", first.next_page_token[:-3]):
        assert await failure(page(10, bad)) == (INVALID_ARGUMENT, "INVALID_PAGE_TOKEN"), bad
    assert (await failure(page(-1)))[0] == INVALID_ARGUMENT


async def test_list_users_searches_email_handle_and_name(auth: Auth) -> None:
    admin = await auth.admin()
    base = datetime.now(UTC) - timedelta(days=1)
    people = [
        # (email, display name, handle)
        ("zoe.quartz@example.com", "Zoë Quartz", "zq"),
        ("max@quartzworks.io", "Max Power", ""),
        ("ann@example.com", "Ann QUARTZ", "ann_q"),
        ("bob@example.com", "Bob", "quartz_fan"),
        ("pct@example.com", "100% Pure", ""),
        ("under_score@example.com", "Under Score", ""),
        ("slash/er@example.com", "Slasher", ""),
        ("nobody@example.com", "Nobody", "nobody"),
    ]
    ids: dict[str, str] = {}
    async with auth.uow.write() as session:
        for i, (email, name, handle) in enumerate(people):
            ids[email] = str(uuid.uuid4())
            await store.insert_account(
                session,
                Account(
                    id=ids[email],
                    email=email,
                    display_name=name,
                    role="user",
                    password_hash="$argon2id$not-a-real-hash",
                    created_at=base + timedelta(seconds=i),
                    handle=handle,
                ),
            )

    async def emails(query: str, size: int = 100, token: str = "") -> list[str]:
        reply: auth_pb2.ListUsersResponse = await auth.stub.ListUsers(
            auth_pb2.ListUsersRequest(page_size=size, page_token=token, query=query),
            metadata=admin.metadata,
            timeout=10,
        )
        return [user.email for user in reply.users]

    quartz = ["bob@example.com", "ann@example.com", "max@quartzworks.io", "zoe.quartz@example.com"]
    # Email, handle or display name; a substring anywhere; any case; newest first.
    assert await emails("QuArTz") == quartz
    assert await emails("  quartz ") == quartz  # trimmed
    assert await emails("ann_") == ["ann@example.com"]  # the handle
    assert await emails("power") == ["max@quartzworks.io"]  # the display name
    # LIKE's wildcards match only themselves.
    assert await emails("%") == ["pct@example.com"]
    assert await emails("_") == ["under_score@example.com", "bob@example.com", "ann@example.com"]
    assert await emails("ua_tz") == [] == await emails("qu%tz")  # as wildcards they'd match
    assert await emails("h/e") == ["slash/er@example.com"]
    assert await emails("no such person") == []
    # "" is everyone (the admin included).
    assert len(await emails("")) == len(people) + 1

    # Paging carries on with the query: nothing skipped, nothing twice.
    seen: list[str] = []
    token = ""
    while True:
        reply = await auth.stub.ListUsers(
            auth_pb2.ListUsersRequest(page_size=1, page_token=token, query="quartz"),
            metadata=admin.metadata,
            timeout=10,
        )
        seen.extend(user.email for user in reply.users)
        token = reply.next_page_token
        if not token:
            break
    assert seen == quartz

    too_long = auth.stub.ListUsers(
        auth_pb2.ListUsersRequest(query="q" * 201), metadata=admin.metadata, timeout=10
    )
    error = await failure_details(too_long)
    details = error_details(error.trailing_metadata())
    assert error.code() == INVALID_ARGUMENT
    assert details is not None and details.reason == "INVALID_QUERY"
    assert details.metadata == {"field": "query"}
    assert len(await emails("q" * 200)) == 0  # at the limit: a query like any other


async def test_set_role(auth: Auth, js: JetStreamContext) -> None:
    admin = await auth.admin()
    user = await auth.register()

    def set_role(user_id: str, role: str) -> Any:
        return auth.stub.SetRole(
            auth_pb2.SetRoleRequest(user_id=user_id, role=role), metadata=admin.metadata, timeout=10
        )

    assert await failure(set_role(user.user.id, "superuser")) == (INVALID_ARGUMENT, "INVALID_ROLE")
    assert await failure(set_role(str(uuid.uuid4()), "premium")) == (NOT_FOUND, "USER_NOT_FOUND")

    changed = (await set_role(user.user.id, "premium")).user
    assert (changed.id, changed.role, changed.email) == (user.user.id, "premium", user.user.email)
    assert (await set_role(user.user.id, "premium")).user.role == "premium"  # a no-op
    # The new role is in the next access token, after a refresh.
    refreshed = await auth.refresh(user)
    assert refreshed.user.role == "premium"
    claims = jwt.decode(refreshed.access_token, options={"verify_signature": False})
    assert claims["role"] == "premium"

    events = await published(js, auth, "user.role_changed", user.user.id)
    assert len(events) == 1  # setting the same role again published nothing
    payload = UserRoleChanged()
    assert events[0].payload.Unpack(payload)
    assert (payload.old_role, payload.new_role) == ("user", "premium")


class Probe(auth_pb2_grpc.AuthServiceServicer):
    """Another klik service: any RPC that needs a signed-in user (GetMe here)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def GetMe(self, request: Any, context: Any) -> auth_pb2.GetMeResponse:
        caller = await self.resources.callers.user(context)
        return auth_pb2.GetMeResponse(user=auth_pb2.User(id=caller.user_id))


async def start_other_service(
    stack: AuthStack, auth: Auth, database_url: str
) -> tuple[Server, grpc.aio.Channel]:
    """A "content" service (kit Server, its own database) that verifies tokens
    against `auth`'s JWKS."""

    def build(resources: Resources) -> ServiceParts:
        def register(server: grpc.aio.Server) -> Sequence[str]:
            auth_pb2_grpc.add_AuthServiceServicer_to_server(Probe(resources), server)
            return ("klik.auth.v1.AuthService",)

        return ServiceParts(register)

    env = {"KLIK_AUTH_ADDR": f"127.0.0.1:{auth.port}", "KLIK_SERVICE_KEYS_DIR": str(stack.keys_dir)}
    settings = dataclasses.replace(
        ServiceSettings.from_env("content", env=env),
        port=0,
        metrics_port=0,
        database_url=database_url,
        nats_url=stack.nats_url,
        grace_seconds=2.0,
    )
    server = Server(ServiceSpec("content", build, TEST_MIGRATIONS), settings)
    await server.start()
    await asyncio.wait_for(server.ready.wait(), 30)
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")


async def test_deleted_users_tokens_stop_working_everywhere(
    stack: AuthStack, js: JetStreamContext, make_database_url: Callable[[], str]
) -> None:
    content_database = make_database_url()
    auth = await stack.start()
    replica = await stack.start()  # a second auth replica on the same database
    admin = await auth.admin()
    doomed = await auth.register()
    bystander = await auth.register()
    other, channel = await start_other_service(stack, auth, content_database)
    try:
        elsewhere = auth_pb2_grpc.AuthServiceStub(channel)

        async def at_other_service(session: Session) -> Any:
            return await elsewhere.GetMe(
                auth_pb2.GetMeRequest(), metadata=session.metadata, timeout=10
            )

        assert (await at_other_service(doomed)).user.id == doomed.user.id
        assert (await replica.me(doomed.access_token)).id == doomed.user.id

        assert await failure(
            auth.stub.DeleteUser(
                auth_pb2.DeleteUserRequest(user_id=str(uuid.uuid4())), metadata=admin.metadata
            )
        ) == (NOT_FOUND, "USER_NOT_FOUND")
        await auth.stub.DeleteUser(
            auth_pb2.DeleteUserRequest(user_id=doomed.user.id), metadata=admin.metadata, timeout=10
        )

        # At once on the replica that deleted it; the session family is gone too.
        assert await failure(auth.me(doomed.access_token)) == (UNAUTHENTICATED, "INVALID_TOKEN")
        assert await failure(auth.refresh(doomed)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
        assert (await failure(auth.login(doomed.user.email)))[1] == "INVALID_CREDENTIALS"
        # Elsewhere as soon as user.deleted arrives: the still unexpired access token is
        # refused by another service and by the other auth replica.
        await wait_for(lambda: _refused(at_other_service(doomed)), message="other service")
        assert await failure(at_other_service(doomed)) == (UNAUTHENTICATED, "INVALID_TOKEN")
        await wait_for(lambda: _refused(replica.me(doomed.access_token)), message="replica")
        # Nobody else is affected.
        assert (await at_other_service(bystander)).user.id == bystander.user.id

        events = await published(js, auth, "user.deleted", doomed.user.id)
        assert len(events) == 1
        payload = UserDeleted()
        assert events[0].payload.Unpack(payload) and payload.user_id == doomed.user.id
    finally:
        await channel.close()
        await other.shutdown()

    # A service that starts after the deletion learns of it too (the feed starts
    # an access-token lifetime back in the stream).
    restarted, channel = await start_other_service(stack, auth, content_database)
    try:
        assert await failure(
            auth_pb2_grpc.AuthServiceStub(channel).GetMe(
                auth_pb2.GetMeRequest(), metadata=bearer(doomed.access_token), timeout=10
            )
        ) == (UNAUTHENTICATED, "INVALID_TOKEN")
    finally:
        await channel.close()
        await restarted.shutdown()


async def _refused(call: Any) -> bool:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return bool(error.code() == UNAUTHENTICATED)
    return False


def test_list_users_page_tokens_keep_their_bytes() -> None:
    """The typed cursor writes the tokens the hand-written one did, so a page token
    issued before the change still pages on after it."""
    when, user_id = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC), str(uuid.uuid4())
    legacy = paging.encode_cursor("auth.ListUsers", {"created_at": when.isoformat(), "id": user_id})
    assert LIST_USERS.encode((when, user_id)) == legacy
    assert LIST_USERS.decode(legacy) == (when, user_id)


async def test_the_last_admin_cannot_demote_or_delete_themselves(auth: Auth) -> None:
    admin = await auth.admin()
    last_admin = (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN")
    demote = auth_pb2.SetRoleRequest(user_id=admin.user.id, role="user")
    assert await failure(auth.stub.SetRole(demote, metadata=admin.metadata, timeout=10)) == (
        last_admin
    )
    delete = auth_pb2.DeleteUserRequest(user_id=admin.user.id)
    assert await failure(auth.stub.DeleteUser(delete, metadata=admin.metadata, timeout=10)) == (
        last_admin
    )
    assert (await auth.me(admin.access_token)).role == "admin"

    # Two admins demoting each other at once: exactly one wins, one admin is left.
    other = await with_role(auth, admin, "admin")
    results = await asyncio.gather(
        auth.stub.SetRole(demote, metadata=other.metadata, timeout=10),
        auth.stub.SetRole(
            auth_pb2.SetRoleRequest(user_id=other.user.id, role="user"),
            metadata=admin.metadata,
            timeout=10,
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 1 and refused[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    roles = {(await auth.me(s.access_token)).role for s in (admin, other)}
    assert roles == {"admin", "user"}
