"""Accounts through the real auth service: Register, Login, GetMe, ChangePassword,
Logout, and the error rows of API.md § Auth that belong to them."""

from __future__ import annotations

import asyncio

import grpc
from nats.js import JetStreamContext
from sqlalchemy import select

from kit.errors import error_details
from klik.auth.v1 import auth_pb2
from klik.events.v1.events_pb2 import UserRegistered
from services.auth import store
from tests.auth.conftest import (
    ADMIN_EMAIL,
    PASSWORD,
    Auth,
    AuthStack,
    failure,
    failure_details,
    published,
)

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def register(email: str, password: str = PASSWORD, name: str = "Ann") -> auth_pb2.RegisterRequest:
    return auth_pb2.RegisterRequest(email=email, password=password, display_name=name)


async def test_register_login_and_get_me(auth: Auth) -> None:
    created = (
        await auth.stub.Register(register("  Ann@Example.COM ", name="  Ann  "), timeout=10)
    ).user
    assert (created.email, created.display_name, created.role) == ("ann@example.com", "Ann", "user")
    assert created.created_at.seconds > 0

    login = await auth.stub.Login(
        auth_pb2.LoginRequest(email="ANN@example.com", password=PASSWORD), timeout=10
    )
    assert login.token_type == "Bearer"
    assert login.expires_in == 900
    assert login.user == created
    assert len(login.refresh_token) >= 43  # 32 random bytes, base64url
    assert await auth.me(login.access_token) == created


async def test_email_taken_is_case_insensitive(auth: Auth) -> None:
    await auth.stub.Register(register("bob@example.com"), timeout=10)
    assert await failure(auth.stub.Register(register(" BOB@example.com"), timeout=10)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "EMAIL_TAKEN",
    )


async def test_weak_passwords_say_which_rule(auth: Auth) -> None:
    cases = {
        "short12": "min_length",
        "x" * 129: "max_length",
        "Password1": "common",  # in the shipped list as "password1", compared case-insensitively
        "baseball": "common",
    }
    for password, rule in cases.items():
        error = await failure_details(
            auth.stub.Register(register("weak@example.com", password), timeout=10)
        )
        details = error_details(error.trailing_metadata())
        assert error.code() == INVALID_ARGUMENT
        assert details is not None and details.reason == "WEAK_PASSWORD"
        assert details.metadata == {"rule": rule}, password
    # 128 characters (ASVS: at least 64 must be allowed) and spaces are fine.
    await auth.stub.Register(register("long@example.com", "y " * 64), timeout=10)


async def test_invalid_email_and_display_name(auth: Auth) -> None:
    for email in ("", "no-at-sign", "a@b", "two@@example.com", "sp ace@example.com", "a@.com"):
        assert await failure(auth.stub.Register(register(email), timeout=10)) == (
            INVALID_ARGUMENT,
            "INVALID_EMAIL",
        ), email
    for name in ("", "   ", "x" * 101, "tab\tname"):
        assert await failure(
            auth.stub.Register(register("n@example.com", name=name), timeout=10)
        ) == (
            INVALID_ARGUMENT,
            "INVALID_DISPLAY_NAME",
        ), name


async def test_unknown_email_and_wrong_password_look_the_same(auth: Auth) -> None:
    await auth.register("carol@example.com")
    unknown = await failure_details(
        auth.stub.Login(auth_pb2.LoginRequest(email="nobody@example.com", password=PASSWORD))
    )
    wrong = await failure_details(
        auth.stub.Login(auth_pb2.LoginRequest(email="carol@example.com", password="wrong pass"))
    )
    for error in (unknown, wrong):
        details = error_details(error.trailing_metadata())
        assert error.code() == UNAUTHENTICATED
        assert details is not None and details.reason == "INVALID_CREDENTIALS"
    assert unknown.details() == wrong.details()


async def test_admin_emails_get_the_admin_role(auth: Auth) -> None:
    admin = await auth.register(ADMIN_EMAIL.upper())
    assert admin.user.role == "admin"
    second = await auth.register("Second-Admin@Example.com")
    assert second.user.role == "admin"
    assert (await auth.register()).user.role == "user"


async def test_user_registered_is_published_once_even_when_registration_is_retried(
    auth: Auth, js: JetStreamContext
) -> None:
    email = "retry@example.com"
    attempts = await asyncio.gather(
        *(
            auth.stub.Register(register(email.upper() if i % 2 else email), timeout=20)
            for i in range(6)
        ),
        return_exceptions=True,
    )
    created = [reply.user for reply in attempts if isinstance(reply, auth_pb2.RegisterResponse)]
    refused = [error for error in attempts if isinstance(error, grpc.aio.AioRpcError)]
    assert len(created) == 1 and len(refused) == 5
    assert {error.code() for error in refused} == {grpc.StatusCode.ALREADY_EXISTS}
    # A plain retry after the fact, too.
    assert (await failure(auth.stub.Register(register(email), timeout=10)))[1] == "EMAIL_TAKEN"

    events = await published(js, auth, "user.registered", created[0].id)
    assert len(events) == 1
    payload = UserRegistered()
    assert events[0].payload.Unpack(payload)
    assert (payload.user_id, payload.email, payload.role) == (created[0].id, email, "user")
    assert events[0].user_id == created[0].id


async def test_password_is_rehashed_on_login_when_parameters_change(stack: AuthStack) -> None:
    first = await stack.start()
    session = await first.register("rehash@example.com")
    await stack.stop(first)

    async def stored_hash(auth: Auth) -> str:
        async with auth.engine.connect() as conn:
            value = await conn.scalar(
                select(store.users.c.password_hash).where(store.users.c.id == session.user.id)
            )
        assert isinstance(value, str)
        return value

    stronger = await stack.start(KLIK_ARGON2_TIME_COST="3", KLIK_ARGON2_MEMORY_KIB="24576")
    before = await stored_hash(stronger)
    assert before.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    await stronger.login("rehash@example.com")
    after = await stored_hash(stronger)
    assert after.startswith("$argon2id$v=19$m=24576,t=3,p=1$")
    # The new hash still verifies the same password, and a wrong one still fails.
    await stronger.login("rehash@example.com")
    assert (await failure(stronger.login("rehash@example.com", "not the password")))[1] == (
        "INVALID_CREDENTIALS"
    )


async def test_get_me_needs_a_token_and_an_existing_account(auth: Auth) -> None:
    assert await failure(auth.stub.GetMe(auth_pb2.GetMeRequest(), timeout=10)) == (
        UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )
    session = await auth.register()
    # Deleted meanwhile by another replica whose user.deleted has not arrived yet:
    # the database says so.
    async with auth.uow.write() as db_session:
        assert await store.delete_account(db_session, session.user.id)
    assert await failure(auth.me(session.access_token)) == (
        grpc.StatusCode.NOT_FOUND,
        "USER_NOT_FOUND",
    )


async def test_change_password_ends_every_other_session(auth: Auth) -> None:
    here = await auth.register("dave@example.com")
    elsewhere = await auth.login("dave@example.com")
    third = await auth.login("dave@example.com")
    new_password = "a much better passphrase"

    assert await failure(
        auth.stub.ChangePassword(
            auth_pb2.ChangePasswordRequest(current_password="wrong!!!", new_password=new_password),
            metadata=here.metadata,
            timeout=10,
        )
    ) == (UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert await failure(
        auth.stub.ChangePassword(
            auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="short"),
            metadata=here.metadata,
            timeout=10,
        )
    ) == (INVALID_ARGUMENT, "WEAK_PASSWORD")
    assert await failure(
        auth.stub.ChangePassword(
            auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=new_password),
            timeout=10,
        )
    ) == (UNAUTHENTICATED, "UNAUTHENTICATED")

    await auth.stub.ChangePassword(
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=new_password),
        metadata=here.metadata,
        timeout=10,
    )
    # The caller's own session goes on; the others are over.
    await auth.refresh(here)
    for other in (elsewhere, third):
        assert await failure(auth.refresh(other)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    assert (await failure(auth.login("dave@example.com")))[1] == "INVALID_CREDENTIALS"
    await auth.login("dave@example.com", new_password)


async def test_logout_ends_the_family_and_is_idempotent(auth: Auth) -> None:
    session = await auth.register()
    other = await auth.register()
    assert await failure(
        auth.stub.Logout(auth_pb2.LogoutRequest(refresh_token=session.refresh_token), timeout=10)
    ) == (UNAUTHENTICATED, "UNAUTHENTICATED")
    # Someone else's refresh token: nothing happens, and nothing is revealed.
    await auth.stub.Logout(
        auth_pb2.LogoutRequest(refresh_token=other.refresh_token),
        metadata=session.metadata,
        timeout=10,
    )
    await auth.refresh(other)

    second = await auth.login(session.user.email)  # another session of the same account
    await auth.stub.Logout(
        auth_pb2.LogoutRequest(refresh_token=session.refresh_token),
        metadata=session.metadata,
        timeout=10,
    )
    # The ended session's access token stops working too (session.revoked).
    assert await failure(auth.me(session.access_token)) == (UNAUTHENTICATED, "INVALID_TOKEN")
    for token in (session.refresh_token, "never-issued"):  # changes nothing, still {}
        await auth.stub.Logout(
            auth_pb2.LogoutRequest(refresh_token=token), metadata=second.metadata, timeout=10
        )
    assert await failure(auth.refresh(session)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    assert (await auth.me(second.access_token)).id == session.user.id
