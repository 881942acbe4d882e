"""Two-factor sign-in through the real service over gRPC (PostgreSQL): enrol and
confirm, login needs the code, recovery codes work once, codes cannot be replayed,
wrong codes are throttled, disabling needs a code, and roles that must use it
(KLIK_REQUIRE_2FA_ROLES) are refused role-restricted RPCs until they do."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import grpc
import jwt

from klik.auth.v1 import auth_pb2
from services.auth import totp
from tests.auth.conftest import ADMIN_EMAIL, PASSWORD, Auth, AuthStack, Session, failure

INVALID_CODE = "INVALID_TWO_FACTOR_CODE"


def code(secret: str, offset: int = 0) -> str:
    """The code of the step `offset` steps from now (within the accepted drift).

    Taken at least 3 s before the step ends: a call that crossed into the next step
    would move the service's window of accepted steps past an `offset` of -1 (or
    make the step an earlier call used count twice), and the test would fail on the
    clock, not on the code under test."""
    while totp.STEP_SECONDS - time.time() % totp.STEP_SECONDS < 3:
        time.sleep(0.05)  # at most 3 s, once per step: waiting out the boundary
    return totp.code_at(secret, totp.step_at(datetime.now(UTC)) + offset)


def wrong_code(secret: str) -> str:
    """Six digits that are no code of the accepted steps."""
    right = {code(secret, offset) for offset in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def turn_on(auth: Auth, session: Session) -> tuple[str, list[str]]:
    """Enrol and confirm two-factor sign-in; (secret, recovery codes)."""
    enrolled = await auth.stub.EnrollTotp(
        auth_pb2.EnrollTotpRequest(), metadata=session.metadata, timeout=10
    )
    confirmed = await auth.stub.ConfirmTotp(
        auth_pb2.ConfirmTotpRequest(code=code(enrolled.secret, -1)),
        metadata=session.metadata,
        timeout=10,
    )
    return enrolled.secret, list(confirmed.recovery_codes)


async def challenge(auth: Auth, email: str) -> str:
    reply = await auth.stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD), timeout=10)
    assert reply.two_factor_required is True
    assert (reply.access_token, reply.refresh_token) == ("", "")
    assert reply.challenge and reply.challenge_expires_in > 0
    return str(reply.challenge)


def second_step(challenge_token: str, **proof: str) -> auth_pb2.LoginTwoFactorRequest:
    return auth_pb2.LoginTwoFactorRequest(challenge=challenge_token, **proof)


async def test_enrol_confirm_then_login_needs_the_code(auth: Auth) -> None:
    session = await auth.register()
    email = session.user.email
    enrolled = await auth.stub.EnrollTotp(
        auth_pb2.EnrollTotpRequest(), metadata=session.metadata, timeout=10
    )
    assert enrolled.otpauth_uri.startswith("otpauth://totp/klik:")
    assert f"secret={enrolled.secret}" in enrolled.otpauth_uri
    # Enrolled but not confirmed: login still answers tokens.
    assert (await auth.login(email)).access_token
    wrong = auth_pb2.ConfirmTotpRequest(code=wrong_code(enrolled.secret))
    assert await failure(auth.stub.ConfirmTotp(wrong, metadata=session.metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        INVALID_CODE,
    )
    confirmed = await auth.stub.ConfirmTotp(
        auth_pb2.ConfirmTotpRequest(code=code(enrolled.secret, -1)),
        metadata=session.metadata,
        timeout=10,
    )
    assert len(confirmed.recovery_codes) == 10 == len(set(confirmed.recovery_codes))

    token = await challenge(auth, email)
    # The challenge alone is no credential, nor is a wrong code.
    assert await failure(auth.stub.LoginTwoFactor(second_step(token, code="12345x"))) == (
        grpc.StatusCode.UNAUTHENTICATED,
        INVALID_CODE,
    )
    reply = await auth.stub.LoginTwoFactor(
        second_step(token, code=code(enrolled.secret)), timeout=10
    )
    assert reply.access_token and reply.refresh_token and reply.user.id == session.user.id
    assert (await auth.me(reply.access_token)).email == email
    # A challenge works once.
    again = auth.stub.LoginTwoFactor(second_step(token, code=code(enrolled.secret, 1)))
    assert await failure(again) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CHALLENGE")
    # Enrolling again while it is on is refused.
    assert await failure(
        auth.stub.EnrollTotp(auth_pb2.EnrollTotpRequest(), metadata=session.metadata)
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "TWO_FACTOR_ALREADY_ENABLED")


async def test_a_code_cannot_be_replayed(auth: Auth) -> None:
    session = await auth.register()
    secret, _ = await turn_on(auth, session)
    used = code(secret)
    first = await auth.stub.LoginTwoFactor(
        second_step(await challenge(auth, session.user.email), code=used), timeout=10
    )
    assert first.access_token
    replay = auth.stub.LoginTwoFactor(
        second_step(await challenge(auth, session.user.email), code=used)
    )
    assert await failure(replay) == (grpc.StatusCode.UNAUTHENTICATED, INVALID_CODE)
    # The code used to confirm (one step back) is refused too: its step is past.
    older = auth.stub.LoginTwoFactor(
        second_step(await challenge(auth, session.user.email), code=code(secret, -1))
    )
    assert await failure(older) == (grpc.StatusCode.UNAUTHENTICATED, INVALID_CODE)


async def test_a_recovery_code_works_once(auth: Auth) -> None:
    session = await auth.register()
    _, recovery = await turn_on(auth, session)
    email = session.user.email
    # Any case, with or without the dashes.
    typed = recovery[3].upper().replace("-", "")
    reply = await auth.stub.LoginTwoFactor(
        second_step(await challenge(auth, email), recovery_code=typed), timeout=10
    )
    assert reply.access_token
    again = auth.stub.LoginTwoFactor(
        second_step(await challenge(auth, email), recovery_code=recovery[3])
    )
    assert await failure(again) == (grpc.StatusCode.UNAUTHENTICATED, INVALID_CODE)
    other = await auth.stub.LoginTwoFactor(
        second_step(await challenge(auth, email), recovery_code=recovery[4]), timeout=10
    )
    assert other.access_token


async def test_wrong_codes_are_throttled(stack: AuthStack) -> None:
    auth = await stack.start(KLIK_LOGIN_MAX_FAILURES="2", KLIK_LOGIN_BASE_DELAY_SECONDS="60")
    session = await auth.register()
    secret, _ = await turn_on(auth, session)
    token = await challenge(auth, session.user.email)
    wrong = wrong_code(secret)
    for _ in range(2):
        assert await failure(auth.stub.LoginTwoFactor(second_step(token, code=wrong))) == (
            grpc.StatusCode.UNAUTHENTICATED,
            INVALID_CODE,
        )
    # Now even the right code waits, here and through the other RPCs that take one.
    assert await failure(auth.stub.LoginTwoFactor(second_step(token, code=code(secret)))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_ATTEMPTS",
    )
    disable = auth_pb2.DisableTotpRequest(code=code(secret))
    assert await failure(auth.stub.DisableTotp(disable, metadata=session.metadata)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_ATTEMPTS",
    )


async def test_disabling_needs_a_code(auth: Auth) -> None:
    session = await auth.register()
    secret, _ = await turn_on(auth, session)
    no_code = auth_pb2.DisableTotpRequest()
    assert await failure(auth.stub.DisableTotp(no_code, metadata=session.metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        INVALID_CODE,
    )
    assert await challenge(auth, session.user.email)  # still on
    await auth.stub.DisableTotp(
        auth_pb2.DisableTotpRequest(code=code(secret)), metadata=session.metadata, timeout=10
    )
    assert (await auth.login(session.user.email)).access_token  # one step again
    assert await failure(
        auth.stub.DisableTotp(
            auth_pb2.DisableTotpRequest(code=code(secret, 1)), metadata=session.metadata
        )
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "TWO_FACTOR_NOT_ENABLED")


async def test_required_roles_are_refused_admin_rpcs_until_they_turn_it_on(
    stack: AuthStack,
) -> None:
    auth = await stack.start(KLIK_REQUIRE_2FA_ROLES="admin")
    admin = await auth.register(ADMIN_EMAIL)
    user = await auth.register()
    assert claims(admin.access_token)["tfr"] is True
    assert "tfr" not in claims(user.access_token)
    # Login works, and so do the admin's own calls; admin RPCs are refused.
    assert (await auth.me(admin.access_token)).role == "admin"
    listing = auth.stub.ListUsers(auth_pb2.ListUsersRequest(), metadata=admin.metadata)
    assert await failure(listing) == (grpc.StatusCode.PERMISSION_DENIED, "TWO_FACTOR_REQUIRED")

    secret, _ = await turn_on(auth, admin)
    reply = await auth.stub.LoginTwoFactor(
        second_step(await challenge(auth, ADMIN_EMAIL), code=code(secret)), timeout=10
    )
    assert "tfr" not in claims(reply.access_token)
    users = await auth.stub.ListUsers(
        auth_pb2.ListUsersRequest(),
        metadata=(("authorization", f"Bearer {reply.access_token}"),),
        timeout=10,
    )
    assert {u.email for u in users.users} >= {ADMIN_EMAIL, user.user.email}
    # A refresh of the token from before the factor was on drops the claim too.
    refreshed = await auth.refresh(admin)
    assert "tfr" not in claims(refreshed.access_token)
