"""Access-token verification (kit.tokens), service identities (kit.identity) and the
callers made of them (kit.callers): every forged token is refused, rotation keeps
working, refetches are rate-limited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from kit.callers import Callers
from kit.errors import Unauthenticated
from kit.identity import generate_keys, is_service_token, load_identity, load_trust
from kit.tokens import SESSION_CLAIM, TokenVerifier


class Jwks:
    """A JWKS source the test controls, counting fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Ed25519PrivateKey] = {}
        self.fetches = 0

    def add(self, kid: str) -> Ed25519PrivateKey:
        self.keys[kid] = Ed25519PrivateKey.generate()
        return self.keys[kid]

    async def __call__(self) -> Sequence[Mapping[str, str]]:
        self.fetches += 1
        return [
            {**OKPAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid, "alg": "EdDSA"}
            for kid, k in self.keys.items()
        ]


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "klik-auth",
        "aud": "klik",
        "sub": "user-1",
        "role": "user",
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: Ed25519PrivateKey, kid: str, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="EdDSA", headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """The classic key-confusion forgery: HMAC keyed with the public key's PEM."""
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}."
        f"{b64(json.dumps(payload).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as error:
        await verifier.verify(token)
    return error.value.reason


async def test_a_good_token_verifies_with_its_claims() -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verified = await TokenVerifier(jwks).verify(mint(key, "k1", role="admin"))
    assert (verified.subject, verified.role) == ("user-1", "admin")
    assert verified.expires_at > time.time()


async def test_forged_tokens_are_refused() -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks, refetch_interval=0)
    stranger = Ed25519PrivateKey.generate()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forgeries = {
        "wrong key": mint(stranger, "k1"),
        "alg none": f"{b64(json.dumps({'alg': 'none', 'kid': 'k1'}).encode())}."
        f"{b64(json.dumps(claims()).encode())}.",
        "HS256 with public key": hs256(claims(), public_pem, "k1"),
        "wrong audience": mint(key, "k1", aud="someone-else"),
        "wrong issuer": mint(key, "k1", iss="evil"),
        "unknown kid": mint(stranger, "k9"),
        "no jti": mint(key, "k1", jti=None),
        "no role": mint(key, "k1", role=None),
        "garbage": "not-a-jwt",
    }
    for name, token in forgeries.items():
        assert await refused(verifier, token) == "INVALID_TOKEN", name


async def test_an_expired_token_says_so_and_leeway_is_small() -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks, leeway=30)
    now = int(time.time())
    assert await refused(verifier, mint(key, "k1", exp=now - 60)) == "TOKEN_EXPIRED"
    within_leeway = await verifier.verify(mint(key, "k1", exp=now - 5))
    assert within_leeway.subject == "user-1"


async def test_rotation_a_new_kid_is_fetched_and_the_old_key_still_verifies() -> None:
    jwks = Jwks()
    old = jwks.add("k1")
    verifier = TokenVerifier(jwks, refetch_interval=0)
    await verifier.verify(mint(old, "k1"))
    new = jwks.add("k2")
    assert (await verifier.verify(mint(new, "k2"))).subject == "user-1"
    assert (await verifier.verify(mint(old, "k1"))).subject == "user-1"
    assert jwks.fetches == 2
    # Once auth drops the old key from its JWKS, its tokens stop verifying.
    del jwks.keys["k1"]
    fresh = TokenVerifier(jwks)
    assert await refused(fresh, mint(old, "k1")) == "INVALID_TOKEN"


async def test_unknown_kids_cannot_make_the_verifier_hammer_auth() -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks, refetch_interval=3600)
    await verifier.verify(mint(key, "k1"))
    for i in range(20):
        assert await refused(verifier, mint(key, f"bogus-{i}")) == "INVALID_TOKEN"
    assert jwks.fetches == 1


def test_service_tokens_verify_only_for_their_callee_and_from_trusted_keys(
    tmp_path: Path,
) -> None:
    generate_keys(tmp_path / "keys", ["generation", "wallet"])
    generate_keys(tmp_path / "other", ["generation"])  # same name, untrusted key
    identity = load_identity(tmp_path / "keys", "generation")
    impostor = load_identity(tmp_path / "other", "generation")
    assert identity is not None and impostor is not None
    trust = load_trust(tmp_path / "keys")

    token = identity.token("wallet")
    assert is_service_token(token)
    assert trust.verify(token, callee="wallet") == "generation"
    assert identity.token("wallet") == token, "cached until near expiry"
    with pytest.raises(Unauthenticated):
        trust.verify(token, callee="content")  # replay against another service
    with pytest.raises(Unauthenticated):
        trust.verify(impostor.token("wallet"), callee="wallet")


def test_generate_keys_keeps_existing_keys(tmp_path: Path) -> None:
    generate_keys(tmp_path, ["wallet"])
    before = (tmp_path / "wallet.key").read_bytes()
    generate_keys(tmp_path, ["wallet", "auth"])
    assert (tmp_path / "wallet.key").read_bytes() == before
    assert (tmp_path / "wallet.key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "auth.key",
        "auth.pub",
        "wallet.key",
        "wallet.pub",
    ]


async def test_the_session_claim_is_read_when_present_and_optional() -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks)
    assert (await verifier.verify(mint(key, "k1", **{SESSION_CLAIM: "s-1"}))).session_id == "s-1"
    assert (await verifier.verify(mint(key, "k1"))).session_id == ""


class Metadata:
    """The one thing `Callers` reads of a servicer context: its metadata."""

    def __init__(self, token: str) -> None:
        self.token = token

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


async def test_a_callers_session_is_its_tokens_and_services_have_none(tmp_path: Path) -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    generate_keys(tmp_path, ["generation", "auth"])
    generation = load_identity(tmp_path, "generation")
    assert generation is not None
    callers = Callers("auth", TokenVerifier(jwks), load_trust(tmp_path))

    def context(token: str) -> Any:
        return Metadata(token)

    user = await callers.user(context(mint(key, "k1", **{SESSION_CLAIM: "s-1"})))
    assert (user.user_id, user.session_id) == ("user-1", "s-1")
    assert (await callers.user(context(mint(key, "k1")))).session_id == ""
    service = await callers.service(context(generation.token("auth")))
    assert (service.service, service.session_id) == ("generation", "")
