"""The Ed25519 keys that sign access tokens: creation, rotation, the JWKS, signing.

Keys live in the auth database and move through three states:

    next      published in the JWKS, signs nothing yet
    current   signs every new access token (exactly one: a unique index)
    retired   still published until every token it signed has expired
              (retired_at + access-token TTL + leeway), then deleted

A key is published as `next` long before it signs, so verifiers in other services
already hold it in their JWKS cache when the first token signed with it arrives: a
rotation never makes them refetch (rate-limited) or refuse a fresh token. Rotation
promotes `next` to `current`, retires the old `current` and creates a new `next`.

It happens lazily and automatically: whoever signs a token first after the current
key is `KLIK_SIGNING_KEY_ROTATION_SECONDS` old (and its successor has been published
for PUBLISH_AHEAD_SECONDS) rotates, under a lock, so replicas racing on it rotate
once. `Keyring.rotate()` forces one (an operator's `python -m services.auth
rotate-key`). The first start creates the first two keys the same way.

The private keys are stored sealed with the key-encryption key (kek.py); `seal_at_rest`
(run at every start-up) seals rows stored in plaintext before that and re-seals
those under an older KEK."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import Clock, utc_now
from kit.config import ServiceSettings
from kit.db import UnitOfWork
from kit.server import token_lifetime
from kit.tokens import EMAIL_VERIFIED_CLAIM, SESSION_CLAIM, TWO_FACTOR_MISSING_CLAIM
from services.auth import store
from services.auth.kek import Sealer
from services.auth.store import KeyStatus, StoredKey

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
# Extra time a retired key stays published beyond the longest a token it signed can
# pass verification: covers a token signed just as its key was being retired.
RETENTION_MARGIN_SECONDS = 5.0
# How long a key is published before it may sign. Longer than the verifiers' JWKS
# cache age (kit.tokens.TokenVerifier max_age, 600 s), so every verifier has
# refetched the JWKS with it in by then.
PUBLISH_AHEAD_SECONDS = 900.0


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: Ed25519PrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(x: str) -> str:
    """RFC 7638 JWK thumbprint of an Ed25519 public key: a kid derived from the key
    itself, so it can never name two keys."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def public_jwk(kid: str, x: str) -> dict[str, str]:
    """One JWKS entry (RFC 8037 OKP key)."""
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def generate() -> tuple[str, str, str]:
    """A new key: (kid, private key as PKCS#8 PEM, public key as JWK `x`)."""
    key = Ed25519PrivateKey.generate()
    x = _b64(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return thumbprint(x), pem, x


def mint_access_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    role: str,
    session_id: str,
    issued_at: datetime,
    ttl_seconds: float,
    email_verified: bool = True,
    two_factor_missing: bool = False,
) -> str:
    """An access token with the claims every klik service requires (kit.tokens), plus
    `sid` (kit.tokens.SESSION_CLAIM): the session family it was issued from
    (ChangePassword keeps that one; kit.callers puts it on the Caller), and `ev`
    (kit.tokens.EMAIL_VERIFIED_CLAIM): whether the account's address is verified, and
    `tfr` (kit.tokens.TWO_FACTOR_MISSING_CLAIM) when its role needs two-factor sign-in
    it has not turned on."""
    iat = int(issued_at.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "role": role,
        SESSION_CLAIM: session_id,
        EMAIL_VERIFIED_CLAIM: email_verified,
        "iat": iat,
        "exp": iat + int(ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    if two_factor_missing:
        claims[TWO_FACTOR_MISSING_CLAIM] = True
    return jwt.encode(claims, key.key, algorithm=ALGORITHM, headers={"kid": key.kid})


class Keyring:
    """The auth database's signing keys, seen by one replica; each use case one
    transaction of `uow`."""

    def __init__(
        self,
        uow: UnitOfWork,
        sealer: Sealer,
        *,
        rotation_seconds: float,
        retention_seconds: float,
        publish_ahead_seconds: float = PUBLISH_AHEAD_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._sealer = sealer
        self._clock = clock
        self._rotation = timedelta(seconds=rotation_seconds)
        # A retired key stays in the JWKS this long: the longest a token it signed
        # can still pass verification (access-token TTL + verifier leeway).
        self._retention = timedelta(seconds=retention_seconds)
        self._publish_ahead = timedelta(seconds=publish_ahead_seconds)
        self._parsed: dict[str, Ed25519PrivateKey] = {}

    @classmethod
    def of_service(
        cls, uow: UnitOfWork, sealer: Sealer, settings: ServiceSettings, rotation_seconds: float
    ) -> Keyring:
        """The keyring with the service's settings: retired keys stay published while a
        token they signed can pass verification (TTL + leeway)."""
        return cls(
            uow,
            sealer,
            rotation_seconds=rotation_seconds,
            retention_seconds=token_lifetime(settings) + RETENTION_MARGIN_SECONDS,
        )

    async def signing_key(self) -> SigningKey:
        """The key to sign with now; creates the first keys, or rotates when due.

        Read from the database on every call (one indexed row) rather than cached, so a
        rotation by any replica takes effect everywhere at once and no replica signs
        with a key after it was retired."""
        async with self._uow.read() as session:
            live = await store.live_keys(session)
        current = live.get(KeyStatus.CURRENT)
        if current is None or self._due(current, live.get(KeyStatus.NEXT)):
            current = await self._rotate(force=False)
        return self._signing(current)

    async def rotate(self) -> str:
        """Rotate now, whatever the keys' ages. Returns the new current kid."""
        return (await self._rotate(force=True)).kid

    async def public_keys(self) -> list[dict[str, str]]:
        """The JWKS: the next, current and recently retired keys (creating the first
        keys when there are none yet, so the first GetJwks already has them)."""
        retired_after = self._clock() - self._retention
        async with self._uow.read() as session:
            keys = await store.verifying_keys(session, retired_after)
        if not any(key.status == KeyStatus.CURRENT for key in keys):
            await self.signing_key()
            return await self.public_keys()
        return [public_jwk(key.kid, key.public_key) for key in keys]

    async def seal_at_rest(self) -> int:
        """Seal every private key stored in plaintext, re-seal every one sealed under
        another KEK than the current one, and check that every other one opens
        (kek.KekError otherwise: a wrong KEK). How many rows were rewritten."""
        rewritten = 0
        async with self._uow.write() as session:
            await store.lock_signing_keys(session)
            for stored in await store.all_keys(session):
                if self._sealer.is_current(stored.private_key):
                    self._open(stored)
                    continue
                pem = self._open(stored)
                sealed = self._sealer.seal(pem.encode(), _context(stored.kid))
                await store.set_private_key(session, stored.kid, sealed)
                rewritten += 1
        if rewritten:
            log.info("signing keys sealed under the current KEK", extra={"rows": rewritten})
        return rewritten

    def _open(self, stored: StoredKey) -> str:
        """The PEM of a stored key: opened with the KEK, or as it is when it predates
        sealing (plain PEM, sealed at the next start-up)."""
        if stored.private_key.startswith("-----BEGIN"):
            return stored.private_key
        return self._sealer.open(stored.private_key, _context(stored.kid)).decode()

    def _due(self, current: StoredKey, successor: StoredKey | None) -> bool:
        now = self._clock()
        activated = current.activated_at or current.created_at
        if now - activated < self._rotation:
            return False
        # The successor must have been published long enough (see PUBLISH_AHEAD).
        return successor is None or now - successor.created_at >= self._publish_ahead

    async def _rotate(self, *, force: bool) -> StoredKey:
        # The lock makes racing replicas rotate one after the other, and each re-checks
        # under it; the unique index on status is the backstop should anything bypass it.
        async with self._uow.write() as session:
            await store.lock_signing_keys(session)
            return await self._rotate_locked(session, force=force)

    async def _rotate_locked(self, session: AsyncSession, *, force: bool) -> StoredKey:
        now = self._clock()
        live = await store.live_keys(session)
        current, successor = live.get(KeyStatus.CURRENT), live.get(KeyStatus.NEXT)
        if current is not None and not force and not self._due(current, successor):
            return current  # another replica rotated while we waited for the lock
        if current is not None:
            await store.retire_key(session, current.kid, now)
            log.info("signing key retired", extra={"kid": current.kid})
        if successor is not None:
            await store.activate_key(session, successor.kid, now)
            kid = successor.kid
        else:
            kid, pem, x = generate()
            sealed = self._sealer.seal(pem.encode(), _context(kid))
            await store.insert_key(session, kid, KeyStatus.CURRENT, sealed, x, now)
        next_kid, next_pem, next_x = generate()
        next_sealed = self._sealer.seal(next_pem.encode(), _context(next_kid))
        await store.insert_key(session, next_kid, KeyStatus.NEXT, next_sealed, next_x, now)
        await store.prune_retired_keys(session, now - self._retention)
        log.info("signing key activated", extra={"kid": kid, "next_kid": next_kid})
        return (await store.live_keys(session))[KeyStatus.CURRENT]

    def _signing(self, stored: StoredKey) -> SigningKey:
        key = self._parsed.get(stored.kid)
        if key is None:
            loaded = serialization.load_pem_private_key(self._open(stored).encode(), None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise TypeError(f"signing key {stored.kid} is not an Ed25519 key")
            key = self._parsed[stored.kid] = loaded
        return SigningKey(stored.kid, key)


def _context(kid: str) -> str:
    """What a sealed private key is bound to (kek.Sealer's associated data)."""
    return f"signing_key:{kid}"
