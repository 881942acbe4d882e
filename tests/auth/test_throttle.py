"""Login throttling through the real service: per account first, per client address,
growing delays with a retry delay the gateway turns into Retry-After, and the reset a
successful login brings."""

from __future__ import annotations

from typing import Any

import grpc

from kit.errors import error_details
from klik.auth.v1 import auth_pb2
from tests.auth.conftest import PASSWORD, Auth, failure, failure_details
from tests.helpers import wait_for

FAST = {
    "KLIK_LOGIN_BASE_DELAY_SECONDS": "1",
    "KLIK_LOGIN_MAX_DELAY_SECONDS": "4",
    "KLIK_LOGIN_FAILURE_WINDOW_SECONDS": "60",
}
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def from_address(address: str) -> tuple[tuple[str, str], ...]:
    """What the gateway sends: the one client address it vouches for."""
    return (("klik-client-address", address),)


async def attempt(auth: Auth, email: str, password: str, address: str = "198.51.100.1") -> Any:
    return await auth.stub.Login(
        auth_pb2.LoginRequest(email=email, password=password),
        metadata=from_address(address),
        timeout=10,
    )


async def retry_after(
    auth: Auth, email: str, password: str, address: str = "198.51.100.1"
) -> float:
    error = await failure_details(attempt(auth, email, password, address))
    details = error_details(error.trailing_metadata())
    assert error.code() == EXHAUSTED
    assert details is not None and details.reason == "TOO_MANY_ATTEMPTS"
    assert details.retry_after_seconds is not None
    return details.retry_after_seconds


async def succeeds(auth: Auth, email: str, password: str, address: str = "198.51.100.1") -> bool:
    try:
        await attempt(auth, email, password, address)
    except grpc.aio.AioRpcError as error:
        assert error.code() == EXHAUSTED, error
        return False
    return True


async def test_account_throttling_grows_and_a_success_resets_it(start_auth: Any) -> None:
    auth: Auth = await start_auth(**FAST)
    email = "victim@example.com"
    await auth.register(email)
    for _ in range(5):  # the free failures
        assert (await failure(attempt(auth, email, "guess-guess")))[1] == "INVALID_CREDENTIALS"

    # Now even the right password waits, from any address (the account is throttled).
    assert await retry_after(auth, email, PASSWORD) == 1
    assert await retry_after(auth, email, PASSWORD, address="203.0.113.9") == 1
    # Refused attempts are not checked, so they do not count: after the delay one may try.
    await wait_for(
        lambda: _wrong_is_counted(auth, email), within=10, interval=0.1, message="delay ends"
    )
    # The 6th failure doubles the delay.
    assert await retry_after(auth, email, PASSWORD) == 2

    await wait_for(lambda: succeeds(auth, email, PASSWORD), within=10, interval=0.1)
    # The success reset the account: five free failures again.
    for _ in range(5):
        assert (await failure(attempt(auth, email, "guess-guess")))[1] == "INVALID_CREDENTIALS"
    assert await retry_after(auth, email, PASSWORD) == 1


async def _wrong_is_counted(auth: Auth, email: str) -> bool:
    try:
        await attempt(auth, email, "guess-guess")
    except grpc.aio.AioRpcError as error:
        details = error_details(error.trailing_metadata())
        return details is not None and details.reason == "INVALID_CREDENTIALS"
    raise AssertionError("a wrong password was accepted")


async def test_unknown_accounts_are_throttled_like_known_ones(start_auth: Any) -> None:
    auth: Auth = await start_auth(**FAST)
    for _ in range(5):
        assert (await failure(attempt(auth, "ghost@example.com", "guess-guess")))[1] == (
            "INVALID_CREDENTIALS"
        )
    assert await retry_after(auth, "ghost@example.com", "guess-guess") == 1


async def test_one_address_trying_many_accounts_is_throttled(start_auth: Any) -> None:
    auth: Auth = await start_auth(**FAST, KLIK_LOGIN_ADDRESS_MAX_FAILURES="3")
    sprayer, other = "192.0.2.66", "192.0.2.77"
    real = await auth.register()
    for i in range(3):
        await failure(attempt(auth, f"target{i}@example.com", "guess-guess", sprayer))
    # The address is throttled for every account, even a right password ...
    assert await retry_after(auth, real.user.email, PASSWORD, sprayer) == 1
    # ... but the accounts are not: from elsewhere they work.
    assert await succeeds(auth, real.user.email, PASSWORD, other)
    assert (await failure(attempt(auth, "target0@example.com", "guess-guess", other)))[1] == (
        "INVALID_CREDENTIALS"
    )


async def test_wrong_current_passwords_are_throttled_too(start_auth: Any) -> None:
    auth: Auth = await start_auth(**FAST)
    session = await auth.register()

    def change(current: str) -> Any:
        return auth.stub.ChangePassword(
            auth_pb2.ChangePasswordRequest(current_password=current, new_password="new password!"),
            metadata=session.metadata,
            timeout=10,
        )

    for _ in range(5):
        assert (await failure(change("guess-guess")))[1] == "INVALID_CREDENTIALS"
    assert await failure(change(PASSWORD)) == (EXHAUSTED, "TOO_MANY_ATTEMPTS")
    # Logins to the account wait as well: one counter per account.
    assert await retry_after(auth, session.user.email, PASSWORD) == 1


async def test_a_forged_forwarded_for_counts_against_the_real_peer(start_auth: Any) -> None:
    """`x-forwarded-for` is never read (issue 17): rotating forged hops does not
    escape the address limit; the connection's own address is what is counted."""
    auth: Auth = await start_auth(**FAST, KLIK_LOGIN_ADDRESS_MAX_FAILURES="3")
    for n in range(3):
        forged = (("x-forwarded-for", f"10.9.{n}.{n}"),)
        reply = auth.stub.Login(
            auth_pb2.LoginRequest(email=f"nobody-{n}@example.com", password="guess-guess"),
            metadata=forged,
            timeout=10,
        )
        assert (await failure(reply))[1] == "INVALID_CREDENTIALS"
    fourth = auth.stub.Login(
        auth_pb2.LoginRequest(email="nobody-x@example.com", password="guess-guess"),
        metadata=(("x-forwarded-for", "10.9.9.9"),),
        timeout=10,
    )
    assert await failure(fourth) == (EXHAUSTED, "TOO_MANY_ATTEMPTS")


async def test_the_client_address_is_believed_only_from_klik_networks(start_auth: Any) -> None:
    """A peer outside KLIK_AUTH_TRUSTED_CALLERS cannot choose its address: its
    `klik-client-address` is ignored and it is counted as itself."""
    auth: Auth = await start_auth(
        **FAST, KLIK_LOGIN_ADDRESS_MAX_FAILURES="3", KLIK_AUTH_TRUSTED_CALLERS="192.0.2.0/24"
    )
    for n in range(3):
        reply = attempt(auth, f"nobody-{n}@example.com", "guess-guess", address=f"198.51.100.{n}")
        assert (await failure(reply))[1] == "INVALID_CREDENTIALS"
    assert await failure(
        attempt(auth, "nobody-x@example.com", "guess-guess", address="198.51.100.77")
    ) == (EXHAUSTED, "TOO_MANY_ATTEMPTS")
