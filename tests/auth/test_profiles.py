"""Profiles and self-service deletion through the real auth service: handles
(unique whatever the case, one winner of 20 concurrent claims on PostgreSQL),
UpdateMe with its field mask and `user.profile_changed`, the public GetUser, DeleteMe
through the admin's deletion path, and the gateway routes they get."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from nats.js import JetStreamContext
from sqlalchemy import func, select

from gateway.contracts import PUBLIC_SERVICES
from gateway.policy import is_public
from gateway.transcoding.matcher import Match, Matcher
from gateway.transcoding.routes import build_routes
from kit.errors import error_details
from klik.auth.v1 import auth_pb2
from klik.events.v1.events_pb2 import UserProfileChanged, UserRegistered
from services.auth import domain, store
from tests.auth.conftest import (
    ADMIN_EMAIL,
    PASSWORD,
    Auth,
    Session,
    failure,
    failure_details,
    published,
)
from tests.helpers import free_port

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
NOT_FOUND = grpc.StatusCode.NOT_FOUND
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


async def update_me(auth: Auth, session: Session, **fields: str) -> auth_pb2.User:
    """UpdateMe of exactly `fields`, as the gateway sends a PATCH with those keys."""
    reply: auth_pb2.UpdateMeResponse = await auth.stub.UpdateMe(
        auth_pb2.UpdateMeRequest(
            profile=auth_pb2.ProfileUpdate(**fields),
            update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
        ),
        metadata=session.metadata,
        timeout=20,
    )
    return reply.user


async def get_user(auth: Auth, handle_or_id: str) -> auth_pb2.PublicUser:
    reply: auth_pb2.GetUserResponse = await auth.stub.GetUser(
        auth_pb2.GetUserRequest(handle_or_id=handle_or_id), timeout=10
    )  # no token: public
    return reply.user


def handle() -> str:
    return f"h_{uuid.uuid4().hex[:12]}"


async def test_a_handle_chosen_at_registration_is_lower_case_unique_and_published(
    auth: Auth, js: JetStreamContext
) -> None:
    chosen = handle()
    user = (
        await auth.stub.Register(
            auth_pb2.RegisterRequest(
                email=f"{chosen}@example.com",
                password=PASSWORD,
                display_name="Hana",
                handle=chosen.upper(),
            ),
            timeout=10,
        )
    ).user
    assert user.handle == chosen
    taken = auth_pb2.RegisterRequest(
        email=f"other-{chosen}@example.com", password=PASSWORD, display_name="X", handle=chosen
    )
    assert await failure(auth.stub.Register(taken, timeout=10)) == (ALREADY_EXISTS, "HANDLE_TAKEN")
    # The refused registration created nothing: its email is still free.
    taken.handle = ""
    await auth.stub.Register(taken, timeout=10)

    events = await published(js, auth, "user.registered", user.id)
    payload = UserRegistered()
    assert len(events) == 1 and events[0].payload.Unpack(payload)
    assert payload.handle == chosen


async def test_handle_rules(auth: Auth) -> None:
    session = await auth.register()
    cases = {
        "ab": "length",
        "x" * 31: "length",
        "has-hyphen": "characters",
        "dot.ted": "characters",
        "ünïcode": "characters",
        "Admin": "reserved",
        "SETTINGS": "reserved",
        "me ": "length",  # trimmed first: two characters
    }
    for raw, rule in cases.items():
        error = await failure_details(update_me(auth, session, handle=raw))
        details = error_details(error.trailing_metadata())
        assert error.code() == INVALID_ARGUMENT, raw
        assert details is not None and details.reason == "INVALID_HANDLE", raw
        assert details.metadata == {"rule": rule}, raw
    assert "admin" in domain.RESERVED_HANDLES and "api" in domain.RESERVED_HANDLES
    assert (await update_me(auth, session, handle="abc")).handle == "abc"
    assert (await update_me(auth, session, handle="x" * 30)).handle == "x" * 30
    assert (await update_me(auth, session, handle="")).handle == ""  # removed


async def test_update_me_changes_only_the_masked_fields_and_publishes_the_profile(
    auth: Auth, js: JetStreamContext
) -> None:
    session = await auth.register(name="Before")
    user_id = session.user.id
    mine = handle()

    updated = await update_me(auth, session, bio="  I draw cats.\nMostly.  ", handle=mine.upper())
    assert (updated.bio, updated.handle, updated.display_name) == (
        "I draw cats.\nMostly.",
        mine,
        "Before",
    )
    assert await auth.me(session.access_token) == updated
    # Fields outside the mask are ignored, even when the message carries them.
    reply = await auth.stub.UpdateMe(
        auth_pb2.UpdateMeRequest(
            profile=auth_pb2.ProfileUpdate(display_name="After", bio="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=session.metadata,
        timeout=10,
    )
    assert (reply.user.display_name, reply.user.bio) == ("After", "I draw cats.\nMostly.")
    # Nothing changes: no event.
    await update_me(auth, session, display_name="After")
    await update_me(auth, session)
    await update_me(auth, session, avatar_asset_id="")  # none, and none asked of content

    events = await published(js, auth, "user.profile_changed", user_id)
    assert len(events) == 2
    latest = UserProfileChanged()
    assert events[-1].payload.Unpack(latest)
    assert (latest.user_id, latest.handle, latest.display_name, latest.bio) == (
        user_id,
        mine,
        "After",
        "I draw cats.\nMostly.",
    )
    assert latest.avatar_url == ""  # avatars: tests/content/test_avatars_gateway.py

    for fields, reason in (
        ({"bio": "x" * 281}, "INVALID_BIO"),
        ({"bio": "bell\x07"}, "INVALID_BIO"),
        ({"display_name": "  "}, "INVALID_DISPLAY_NAME"),
        ({"avatar_asset_id": "../etc/passwd"}, "INVALID_AVATAR"),
    ):
        assert await failure(update_me(auth, session, **fields)) == (INVALID_ARGUMENT, reason)
    bad_mask = auth.stub.UpdateMe(
        auth_pb2.UpdateMeRequest(update_mask=field_mask_pb2.FieldMask(paths=["email"])),
        metadata=session.metadata,
        timeout=10,
    )
    assert await failure(bad_mask) == (INVALID_ARGUMENT, "INVALID_UPDATE_MASK")
    assert await failure(auth.stub.UpdateMe(auth_pb2.UpdateMeRequest(), timeout=10)) == (
        UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )


async def test_twenty_concurrent_claims_of_one_handle_have_one_winner(auth: Auth) -> None:
    if auth.engine.dialect.name != "postgresql":
        pytest.skip("the race is shown on PostgreSQL")
    claimants = await asyncio.gather(*(auth.register() for _ in range(20)))
    wanted = handle()
    # Different cases: the index compares them lower-cased.
    spellings = [wanted.upper() if i % 2 else wanted for i in range(20)]
    outcomes = await asyncio.gather(
        *(update_me(auth, s, handle=h) for s, h in zip(claimants, spellings, strict=True)),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, auth_pb2.User)]
    losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and winners[0].handle == wanted
    assert len(losers) == 19
    for error in losers:
        details = error_details(error.trailing_metadata())
        assert error.code() == ALREADY_EXISTS
        assert details is not None and details.reason == "HANDLE_TAKEN"
    async with auth.engine.connect() as conn:
        holders = await conn.scalar(
            select(func.count()).where(func.lower(store.users.c.handle) == wanted)
        )
    assert holders == 1
    assert (await get_user(auth, wanted)).id == winners[0].id


async def test_get_user_is_public_and_never_shows_the_email(auth: Auth) -> None:
    session = await auth.register(name="Pub Lic")
    mine = handle()
    await update_me(auth, session, handle=mine, bio="hello")
    by_handle = await get_user(auth, mine.upper())
    by_id = await get_user(auth, session.user.id)
    assert by_handle == by_id
    assert (by_handle.id, by_handle.handle, by_handle.display_name, by_handle.bio) == (
        session.user.id,
        mine,
        "Pub Lic",
        "hello",
    )
    assert by_handle.created_at == session.user.created_at
    assert "email" not in auth_pb2.PublicUser.DESCRIPTOR.fields_by_name
    assert session.user.email not in str(by_handle)

    for unknown in ("nobody_here", str(uuid.uuid4()), ""):
        assert await failure(get_user(auth, unknown)) == (NOT_FOUND, "USER_NOT_FOUND")


async def test_delete_me_needs_the_password_and_is_the_admins_deletion(
    auth: Auth, js: JetStreamContext
) -> None:
    session = await auth.register()
    mine = handle()
    await update_me(auth, session, handle=mine)

    def delete(password: str, who: Session = session) -> Awaitable[Any]:
        call: Awaitable[Any] = auth.stub.DeleteMe(
            auth_pb2.DeleteMeRequest(password=password), metadata=who.metadata, timeout=10
        )
        return call

    assert await failure(delete("not my password")) == (UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert (await auth.me(session.access_token)).id == session.user.id

    await delete(PASSWORD)

    assert await failure(auth.me(session.access_token)) == (UNAUTHENTICATED, "INVALID_TOKEN")
    assert await failure(auth.refresh(session)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    assert (await failure(auth.login(session.user.email)))[1] == "INVALID_CREDENTIALS"
    assert await failure(get_user(auth, mine)) == (NOT_FOUND, "USER_NOT_FOUND")
    assert await failure(get_user(auth, session.user.id)) == (NOT_FOUND, "USER_NOT_FOUND")
    assert len(await published(js, auth, "user.deleted", session.user.id)) == 1

    # The last admin cannot delete themselves, as with DeleteUser.
    admin = await auth.admin()
    assert admin.user.email == ADMIN_EMAIL
    async with auth.engine.connect() as conn:
        admins = await conn.scalar(select(func.count()).where(store.users.c.role == "admin"))
    assert admins == 1  # each test has a database of its own
    assert await failure(delete(PASSWORD, admin)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "LAST_ADMIN",
    )
    assert (await auth.me(admin.access_token)).id == admin.user.id


def match(matcher: Matcher, method: str, path: str) -> Match:
    found = matcher.match(method, path)
    assert isinstance(found, Match), f"{method} {path}: {found}"
    return found


def test_the_gateway_routes_users_to_auth_and_their_followers_to_content() -> None:
    matcher = Matcher(build_routes(PUBLIC_SERVICES))
    user = match(matcher, "GET", "/v1/users/some_handle")
    assert (user.route.upstream, user.route.method.name) == ("auth", "GetUser")
    assert user.params == {"handle_or_id": "some_handle"}
    assert is_public(user.route)
    for tail, rpc in (("followers", "ListFollowers"), ("following", "ListFollowing")):
        found = match(matcher, "GET", f"/v1/users/{uuid.uuid4()}/{tail}")
        assert (found.route.upstream, found.route.method.name) == ("content", rpc)
    assert match(matcher, "GET", "/v1/profiles/someone").route.upstream == "content"

    update = match(matcher, "PATCH", "/v1/auth/me").route
    assert (update.method.name, update.body, update.mask_field) == (
        "UpdateMe",
        "profile",
        "update_mask",
    )
    assert not is_public(update)
    assert match(matcher, "DELETE", "/v1/auth/me").route.method.name == "DeleteMe"
    assert match(matcher, "GET", "/v1/auth/me").route.method.name == "GetMe"
    sessions = match(matcher, "GET", "/v1/auth/sessions").route
    assert (sessions.method.name, is_public(sessions)) == ("ListSessions", False)
    revoke = match(matcher, "DELETE", "/v1/auth/sessions/abc")
    assert (revoke.route.method.name, revoke.params) == ("RevokeSession", {"session_id": "abc"})


async def test_an_avatar_content_cannot_be_asked_about_changes_nothing(
    start_auth: Callable[..., Awaitable[Auth]],
) -> None:
    """Auth resolves an avatar on content before its transaction: with content
    unreachable the call is UNAVAILABLE `CONTENT_UNAVAILABLE` and the profile stays."""
    auth = await start_auth(KLIK_CONTENT_ADDR=f"127.0.0.1:{free_port()}")  # nobody there
    session = await auth.register()
    before = await update_me(auth, session, bio="before")
    assert await failure(
        update_me(auth, session, bio="after", avatar_asset_id=str(uuid.uuid4()))
    ) == (grpc.StatusCode.UNAVAILABLE, "CONTENT_UNAVAILABLE")
    me: auth_pb2.GetMeResponse = await auth.stub.GetMe(
        auth_pb2.GetMeRequest(), metadata=session.metadata, timeout=10
    )
    assert (me.user.bio, me.user.avatar_asset_id, me.user.avatar_url) == ("before", "", "")
    assert before.bio == "before"
