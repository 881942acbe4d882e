"""Access tokens end to end: forged tokens are refused over real gRPC, signing keys
rotate (automatically, forced, across racing replicas) without breaking live tokens,
and retired keys leave the JWKS once their tokens have expired."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit import db
from klik.auth.v1 import auth_pb2
from services.auth import kek, store
from services.auth.keys import Keyring, thumbprint
from services.auth.service import MIGRATIONS
from services.auth.store import KeyStatus
from tests.auth.conftest import TEST_KEK, Auth, AuthStack, bearer, failure
from tests.helpers import run_module, wait_for

SEALER = kek.Sealer(kek.parse(TEST_KEK, "test"))

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def claims(subject: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "klik-auth",
        "aud": "klik",
        "sub": subject,
        "role": "user",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"
    )


def hs256(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """Key confusion: HMAC keyed with the (public) verification key."""
    header = b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
    head = f"{header}.{b64(json.dumps(payload).encode())}"
    return f"{head}.{b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())}"


async def current_key(uow: db.UnitOfWork) -> tuple[str, Ed25519PrivateKey]:
    """auth's signing key, read from its database (only a test may do this)."""
    async with uow.read() as session:
        stored = (await store.live_keys(session))[KeyStatus.CURRENT]
    pem = SEALER.open(stored.private_key, f"signing_key:{stored.kid}")
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, Ed25519PrivateKey)
    return stored.kid, key


async def jwks_kids(auth: Auth) -> list[str]:
    return [
        key.kid for key in (await auth.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=10)).keys
    ]


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def test_access_token_claims_and_jwks(auth: Auth) -> None:
    session = await auth.register()
    header = jwt.get_unverified_header(session.access_token)
    body = jwt.decode(session.access_token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA"
    assert set(body) == {"iss", "aud", "sub", "role", "sid", "ev", "iat", "exp", "jti"}
    assert body["ev"] is False  # a new account has not verified its email yet
    assert (body["iss"], body["aud"], body["sub"], body["role"]) == (
        "klik-auth",
        "klik",
        session.user.id,
        "user",
    )
    assert body["exp"] - body["iat"] == 900

    jwks = (await auth.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=10)).keys
    # The current key and its already published successor.
    assert len(jwks) == 2
    assert header["kid"] in {key.kid for key in jwks}
    for key in jwks:
        assert (key.kty, key.crv, key.alg, key.use) == ("OKP", "Ed25519", "EdDSA", "sig")
        assert key.kid == thumbprint(key.x)
    # The published key verifies the token.
    published = next(key for key in jwks if key.kid == header["kid"])
    public = jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": published.x}).key
    jwt.decode(session.access_token, public, algorithms=["EdDSA"], audience="klik")


async def test_forged_tokens_are_refused(auth: Auth) -> None:
    user = (await auth.register()).user.id
    kid, key = await current_key(auth.uow)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stranger = Ed25519PrivateKey.generate()

    def signed(signer: Ed25519PrivateKey = key, key_id: str = kid, **overrides: Any) -> str:
        return jwt.encode(
            claims(user, **overrides), signer, algorithm="EdDSA", headers={"kid": key_id}
        )

    # The control: a token made the same way with auth's real key passes.
    assert (await auth.me(signed())).id == user

    forged = {
        "signed by another key": signed(stranger),
        "unknown kid": signed(stranger, "no-such-kid"),
        "alg none": unsigned({"alg": "none", "kid": kid}, claims(user)),
        "HS256 with the public key": hs256(claims(user), public_pem, kid),
        "wrong aud": signed(aud="someone-else"),
        "wrong iss": signed(iss="evil-auth"),
        "no role": signed(role=None),
        "no jti": signed(jti=None),
        "tampered payload": signed().replace(".", ".e", 1),
        "garbage": "not.a.jwt",
    }
    for what, token in forged.items():
        assert await failure(auth.me(token)) == (UNAUTHENTICATED, "INVALID_TOKEN"), what
    expired = signed(iat=int(time.time()) - 3600, exp=int(time.time()) - 600)
    assert await failure(auth.me(expired)) == (UNAUTHENTICATED, "TOKEN_EXPIRED")


async def test_real_tokens_expire(start_auth: Any) -> None:
    # Long enough to be used once on a loaded machine, short enough to watch it expire.
    auth: Auth = await start_auth(KLIK_ACCESS_TOKEN_TTL_SECONDS="3", KLIK_TOKEN_LEEWAY_SECONDS="0")
    session = await auth.register()
    assert session.access_token and (await auth.me(session.access_token)).id == session.user.id

    async def refused() -> tuple[grpc.StatusCode, str] | None:
        try:
            await auth.me(session.access_token)
        except grpc.aio.AioRpcError as error:
            return error.code(), ""
        return None

    await wait_for(refused, within=15, interval=0.1, message="access token expires")
    assert await failure(auth.me(session.access_token)) == (UNAUTHENTICATED, "TOKEN_EXPIRED")
    # The refresh token still gets a fresh one.
    assert (await auth.me((await auth.refresh(session)).access_token)).id == session.user.id


async def test_rotation_keeps_live_tokens_and_drops_the_old_key_after_they_expire(
    stack: AuthStack,
) -> None:
    auth = await stack.start(KLIK_ACCESS_TOKEN_TTL_SECONDS="3", KLIK_TOKEN_LEEWAY_SECONDS="0")
    before = await auth.register()
    old_kid = kid_of(before.access_token)
    published_before = await jwks_kids(auth)
    assert (await auth.me(before.access_token)).id == before.user.id  # verifier caches JWKS

    new_kid = await Keyring.of_service(auth.uow, SEALER, auth.server.settings, 3600).rotate()

    after = await auth.login(before.user.email)
    assert kid_of(after.access_token) == new_kid != old_kid
    # The new key was published before it signed anything, so verifiers that cached
    # the JWKS earlier accept its tokens at once, with no refetch.
    assert new_kid in published_before
    assert (await auth.me(after.access_token)).id == before.user.id
    # The previous key's tokens keep verifying while they live ...
    assert (await auth.me(before.access_token)).id == before.user.id
    assert old_kid in await jwks_kids(auth)
    # ... and once every token it signed has expired, it leaves the JWKS.
    await wait_for(
        lambda: _absent(auth, old_kid), within=20, interval=0.2, message="old key dropped"
    )
    assert new_kid in await jwks_kids(auth)
    assert len(await jwks_kids(auth)) == 2  # current + next


async def test_operators_force_a_rotation_from_the_command_line(
    stack: AuthStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await stack.start()
    old_kid = kid_of((await auth.register()).access_token)
    monkeypatch.setenv("KLIK_AUTH_DATABASE_URL", stack.database_url)
    monkeypatch.setenv("KLIK_AUTH_KEK", TEST_KEK)
    code, out = await run_module("services.auth", "rotate-key")
    assert code == 0, out
    new_kid = out.split()[-1]
    assert new_kid != old_kid
    assert kid_of((await auth.register()).access_token) == new_kid
    assert {old_kid, new_kid} <= set(await jwks_kids(auth))
    code, _ = await run_module("services.auth", "no-such-command")
    assert code == 1


async def _absent(auth: Auth, kid: str) -> bool:
    return kid not in await jwks_kids(auth)


@pytest.fixture
async def uow(database_url: str) -> AsyncIterator[db.UnitOfWork]:
    engine = db.make_engine(database_url, pool_size=20)
    await db.migrate(engine, MIGRATIONS)
    yield db.UnitOfWork(db.session_factory(engine))
    await engine.dispose()


async def test_first_start_creates_one_key_however_many_replicas_race(
    uow: db.UnitOfWork,
) -> None:
    replicas = [Keyring(uow, SEALER, rotation_seconds=3600, retention_seconds=60) for _ in range(6)]
    keys = await asyncio.gather(*(keyring.signing_key() for keyring in replicas))
    assert len({key.kid for key in keys}) == 1
    async with uow.read() as session:
        live = await store.live_keys(session)
    assert set(live) == {KeyStatus.CURRENT, KeyStatus.NEXT}


async def test_automatic_rotation_once_due_and_once_only(uow: db.UnitOfWork) -> None:
    # Not due while the successor is too freshly published ...
    waiting = Keyring(
        uow, SEALER, rotation_seconds=0, retention_seconds=60, publish_ahead_seconds=3600
    )
    first = (await waiting.signing_key()).kid
    assert (await waiting.signing_key()).kid == first

    # ... due at once when it need not wait: racing replicas rotate exactly once each
    # time it is due, never leaving two current keys.
    replicas = [
        Keyring(uow, SEALER, rotation_seconds=0.3, retention_seconds=60, publish_ahead_seconds=0)
        for _ in range(5)
    ]
    await wait_for(
        lambda: _rotated(replicas[0], first), within=10, interval=0.05, message="rotation"
    )
    kids = [key.kid for key in await asyncio.gather(*(k.signing_key() for k in replicas))]
    async with uow.read() as session:
        live = await store.live_keys(session)
        published = await store.verifying_keys(
            session, retired_after=datetime(2000, 1, 1, tzinfo=UTC)
        )
    assert live[KeyStatus.CURRENT].kid in kids
    assert sum(key.status == KeyStatus.CURRENT for key in published) == 1
    assert sum(key.status == KeyStatus.NEXT for key in published) == 1


async def _rotated(keyring: Keyring, kid: str) -> bool:
    return (await keyring.signing_key()).kid != kid


async def test_jwks_is_public_and_bearer_rpcs_are_not(auth: Auth) -> None:
    assert len(await jwks_kids(auth)) == 2
    assert await failure(auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(""))) == (
        UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )
