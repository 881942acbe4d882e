"""Auth at the edge, through a real gateway in front of the fake services: bearer
tokens verified against auth's JWKS (over gRPC), RFC 6750 challenges, deleted users
stopped by the revocation feed, per-user buckets and per-class deadlines."""

from __future__ import annotations

import time

import httpx
import pytest
from nats.aio.client import Client as Nats

from kit import bus
from klik.events.v1.events_pb2 import SessionRevoked, UserDeleted
from tests.gateway.fakes import StartGateway, Upstream, error_of
from tests.helpers import envelope, free_port, publish_envelope, unique, wait_for
from tests.tokens import TokenAuthority

CHALLENGE = 'Bearer realm="klik"'


def client_of(gateway: httpx.AsyncClient, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.AsyncClient(base_url=gateway.base_url, headers=headers, timeout=10)


def invalid_token(reply: httpx.Response, code: str) -> dict[str, object]:
    assert reply.status_code == 401
    error = error_of(reply, code, "UNAUTHENTICATED")
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith(CHALLENGE + ', error="invalid_token"')
    assert f'error_description="{error["message"]}"' in challenge
    return error


async def test_a_request_without_a_token_is_401_with_a_bare_challenge(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    async with client_of(gateway) as anonymous:
        reply = await anonymous.post(
            "/v1/wallet/transfers", json={"to_user_id": "u-2", "amount": 1}
        )
        assert reply.status_code == 401
        error_of(reply, "UNAUTHENTICATED", "UNAUTHENTICATED")
        assert reply.headers["www-authenticate"] == CHALLENGE  # RFC 6750 § 3.1
        assert "Transfer" not in upstream.seen  # refused before any upstream call
        # Public routes need none.
        assert (await anonymous.post("/v1/auth/login", json={})).status_code == 200
        assert (await anonymous.get("/healthz")).status_code == 200


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer a b", "Token abc"])
async def test_a_malformed_authorization_header_is_401(
    gateway: httpx.AsyncClient, header: str
) -> None:
    async with client_of(gateway) as anonymous:
        reply = await anonymous.get("/v1/wallet", headers={"Authorization": header})
    invalid_token(reply, "INVALID_TOKEN")


async def test_expired_forged_and_garbage_tokens_are_401(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    authority = upstream.auth.authority
    expired = authority.access_token("u-1", lifetime=-120)  # past the 30 s leeway
    # Same kid, different private key: a forgery that names a real key.
    forger = TokenAuthority(kid=authority.kid)
    forged = forger.access_token("u-1", role="admin")
    cases = {expired: "TOKEN_EXPIRED", forged: "INVALID_TOKEN", "not.a.jwt": "INVALID_TOKEN"}
    for token, code in cases.items():
        async with client_of(gateway, token) as client:
            reply = await client.get("/v1/wallet")
        invalid_token(reply, code)
    assert "GetWallet" not in upstream.seen


async def test_a_valid_token_is_forwarded_with_the_request(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    token = upstream.auth.authority.access_token("u-9")
    async with client_of(gateway, token) as client:
        reply = await client.get("/v1/wallet", headers={"X-Request-ID": "req-edge-1"})
    assert reply.status_code == 200
    _, metadata = upstream.seen["GetWallet"]
    assert metadata["authorization"] == f"Bearer {token}"
    assert metadata["x-request-id"] == "req-edge-1"
    assert metadata["klik-client-address"] == "127.0.0.1"


async def test_a_deleted_users_token_stops_at_the_edge(
    gateway: httpx.AsyncClient, upstream: Upstream, nats_url: str
) -> None:
    user = unique("deleted-")
    token = upstream.auth.authority.access_token(user)
    async with client_of(gateway, token) as client:
        assert (await client.get("/v1/wallet")).status_code == 200
        nc: Nats = await bus.connect(nats_url, name="test-revocation")
        try:
            js = nc.jetstream()
            await bus.ensure_streams(js)
            await publish_envelope(js, envelope("user.deleted", UserDeleted(user_id=user)))
        finally:
            await nc.close()

        async def refused() -> httpx.Response | None:
            reply = await client.get("/v1/wallet")
            return reply if reply.status_code == 401 else None

        reply = await wait_for(refused, message="deleted user's token refused")
        assert reply is not None
    error = invalid_token(reply, "INVALID_TOKEN")
    assert error["message"] == "access token is no longer valid"
    # Other users are unaffected.
    other = upstream.auth.authority.access_token(unique("alive-"))
    async with client_of(gateway, other) as client:
        assert (await client.get("/v1/wallet")).status_code == 200


async def test_a_revoked_sessions_token_stops_at_the_edge(
    gateway: httpx.AsyncClient, upstream: Upstream, nats_url: str
) -> None:
    user = unique("two-sessions-")
    ended = upstream.auth.authority.access_token(user, sid="s-ended")
    kept = upstream.auth.authority.access_token(user, sid="s-kept")
    async with client_of(gateway, ended) as client:
        assert (await client.get("/v1/wallet")).status_code == 200
        nc: Nats = await bus.connect(nats_url, name="test-session-revocation")
        try:
            js = nc.jetstream()
            await bus.ensure_streams(js)
            revoked = SessionRevoked(user_id=user, session_id="s-ended")
            await publish_envelope(js, envelope("session.revoked", revoked))
        finally:
            await nc.close()

        async def refused() -> httpx.Response | None:
            reply = await client.get("/v1/wallet")
            return reply if reply.status_code == 401 else None

        reply = await wait_for(refused, message="the ended session's token refused")
        assert reply is not None
    invalid_token(reply, "INVALID_TOKEN")
    # The user's other session goes on.
    async with client_of(gateway, kept) as client:
        assert (await client.get("/v1/wallet")).status_code == 200


async def test_when_auth_keys_cannot_be_fetched_it_is_503_not_401(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(KLIK_AUTH_ADDR=f"127.0.0.1:{free_port()}")
    for _ in range(2):  # and still 503 on the next try, not "invalid"
        reply = await gateway.get("/v1/wallet")
        assert reply.status_code == 503
        error_of(reply, "AUTH_UNAVAILABLE", "UNAVAILABLE")
        assert reply.headers["retry-after"] == "1"
        assert "www-authenticate" not in reply.headers


async def test_each_user_has_a_bucket_beside_the_address_one(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(
        KLIK_GATEWAY_USER_RATE_READ="2/60", KLIK_GATEWAY_RATE_READ="100/60"
    )
    statuses = [(await gateway.get("/v1/wallet")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await gateway.get("/v1/wallet")
    assert int(limited.headers["retry-after"]) >= 1
    error_of(limited, "RATE_LIMITED", "RESOURCE_EXHAUSTED")
    # Another user at the same address still has their whole bucket.
    other = upstream.auth.authority.access_token("u-other")
    async with client_of(gateway, other) as client:
        assert (await client.get("/v1/wallet")).status_code == 200
    # Writes are another class: the limited user may still write.
    reply = await gateway.post("/v1/admin/wallets/u-1/credits", json={"amount": 1})
    assert reply.status_code == 200


async def test_a_premium_caller_draws_on_the_premium_limits(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(
        KLIK_GATEWAY_USER_RATE_READ="1/60",
        KLIK_GATEWAY_PREMIUM_RATE_READ="3/60",
        KLIK_GATEWAY_RATE_READ="100/60",
    )
    premium = upstream.auth.authority.access_token("u-premium", "premium")
    async with client_of(gateway, premium) as client:
        statuses = [(await client.get("/v1/wallet")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # A plain user at the same address has the plain limit.
    plain = upstream.auth.authority.access_token("u-plain")
    async with client_of(gateway, plain) as client:
        statuses = [(await client.get("/v1/wallet")).status_code for _ in range(2)]
    assert statuses == [200, 429]


async def test_a_forged_token_draws_on_no_users_bucket(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_USER_RATE_READ="1/60")
    forged = TokenAuthority(kid=upstream.auth.authority.kid).access_token("u-1")
    async with client_of(gateway, forged) as attacker:
        for _ in range(3):
            assert (await attacker.get("/v1/wallet")).status_code == 401
    assert (await gateway.get("/v1/wallet")).status_code == 200


async def test_route_classes_have_their_own_deadlines(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(
        KLIK_GATEWAY_TIMEOUT_SECONDS="30", KLIK_GATEWAY_TIMEOUT_READ="0.3"
    )
    started = time.monotonic()
    reply = await gateway.get("/v1/auth/me")  # the fake never answers
    assert reply.status_code == 504
    assert time.monotonic() - started < 5
