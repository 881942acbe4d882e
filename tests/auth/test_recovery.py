"""Password reset through the real service, with the mail read from the sandbox's
sink over real HTTP: no enumeration, a single-use expiring token that ends every
session and the old password, a notice mail, and throttling per address and client."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc

from klik.auth.v1 import auth_pb2
from tests.auth.conftest import PASSWORD, Auth, AuthStack, MailReader, failure
from tests.helpers import wait_for

RESET = "/reset-password"
NEW_PASSWORD = "an entirely new passphrase"
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def fresh_email() -> str:
    return f"reset-{uuid.uuid4().hex[:10]}@example.com"


async def request_reset(auth: Auth, email: str, address: str = "198.51.100.5") -> bytes:
    reply = await auth.stub.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email=email),
        metadata=(("klik-client-address", address),),
        timeout=10,
    )
    return bytes(reply.SerializeToString())


async def confirm(auth: Auth, token: str, password: str = NEW_PASSWORD) -> None:
    await auth.stub.ConfirmPasswordReset(
        auth_pb2.ConfirmPasswordResetRequest(token=token, new_password=password), timeout=10
    )


async def test_known_and_unknown_addresses_answer_alike(stack: AuthStack, mail: MailReader) -> None:
    auth = await stack.start(KLIK_RESET_MAX_REQUESTS="20", KLIK_RESET_ADDRESS_MAX_REQUESTS="50")
    known = fresh_email()
    await auth.register(known)
    unknown = fresh_email()
    timings: dict[str, list[float]] = {known: [], unknown: []}
    answers: set[bytes] = set()
    for _ in range(5):
        for email in (known, unknown):
            started = time.perf_counter()
            answers.add(await request_reset(auth, email))
            timings[email].append(time.perf_counter() - started)
    assert answers == {b""}  # `{}` for both
    known_ms = statistics.median(timings[known]) * 1000
    unknown_ms = statistics.median(timings[unknown]) * 1000
    print(f"reset request median: known {known_ms:.1f} ms, unknown {unknown_ms:.1f} ms")
    # Same work either way (the mail is only queued): a coarse bound, the machine is shared.
    assert max(known_ms, unknown_ms) < 4 * min(known_ms, unknown_ms)
    await mail.arrived(known, 1 + 5)  # the verification mail and five reset mails
    assert await mail.messages(unknown) == []


async def test_a_reset_token_works_once_and_ends_every_session(
    stack: AuthStack, mail: MailReader
) -> None:
    auth = await stack.start()
    email = fresh_email()
    phone = await auth.register(email)
    laptop = await auth.login(email)
    await request_reset(auth, email)
    [reset_mail] = [m for m in await mail.arrived(email, 2) if "Reset" in m["subject"]]
    assert "30 minutes" in reset_mail["text"]
    token = await mail.token(email, RESET)

    refused = (grpc.StatusCode.INVALID_ARGUMENT, "WEAK_PASSWORD")
    assert await failure(confirm(auth, token, "short")) == refused
    await confirm(auth, token)
    assert await failure(confirm(auth, token, "yet another passphrase")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_RESET_TOKEN",
    )
    # Every session family ended; the old password stopped working.
    for session in (phone, laptop):
        assert await failure(auth.refresh(session)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_REFRESH_TOKEN",
        )
    assert await failure(auth.login(email, PASSWORD)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    assert (await auth.login(email, NEW_PASSWORD)).user.email == email
    notices = await mail.arrived(email, 3)
    assert notices[-1]["subject"] == "Your klik password was changed"


async def test_reset_tokens_expire_and_are_refused_when_unknown(
    stack: AuthStack, mail: MailReader
) -> None:
    auth = await stack.start(KLIK_PASSWORD_RESET_TTL_SECONDS="1")
    invalid = (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_RESET_TOKEN")
    assert await failure(confirm(auth, "made-up")) == invalid
    email = fresh_email()
    await auth.register(email)
    await request_reset(auth, email)
    await mail.arrived(email, 2)
    token = await mail.token(email, RESET)
    expired_at = datetime.now(UTC) + timedelta(seconds=1)
    await wait_for(lambda: datetime.now(UTC) > expired_at, message="token expires")
    assert await failure(confirm(auth, token)) == invalid
    assert (await auth.login(email, PASSWORD)).user.email == email


async def test_reset_requests_are_throttled_per_address_and_per_client(start_auth: object) -> None:
    auth: Auth = await start_auth(  # type: ignore[operator]
        KLIK_RESET_MAX_REQUESTS="2", KLIK_RESET_ADDRESS_MAX_REQUESTS="4"
    )
    target = fresh_email()  # unknown: counted all the same
    for _ in range(2):
        await request_reset(auth, target, "198.51.100.1")
    assert (await failure(request_reset(auth, target, "203.0.113.1")))[0] == EXHAUSTED
    # One client spraying addresses hits its own limit.
    for _ in range(2):
        await request_reset(auth, fresh_email(), "198.51.100.1")
    code, reason = await failure(request_reset(auth, fresh_email(), "198.51.100.1"))
    assert (code, reason) == (EXHAUSTED, "TOO_MANY_ATTEMPTS")
    await request_reset(auth, fresh_email(), "198.51.100.2")  # another client is fine
