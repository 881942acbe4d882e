"""Verifying end-user access tokens, in every service and the gateway.

Access tokens are EdDSA (Ed25519) JWTs signed by auth. A `TokenVerifier` checks them
locally against auth's JSON Web Key Set, fetched over gRPC (`AuthService.GetJwks`)
and cached: no round trip per request. An unknown `kid` (auth rotated its key)
triggers a refetch, at most once per `refetch_interval`, so forged kids cannot make
us hammer auth. The algorithm is pinned: `alg: none`, HS256 "signed" with the public
key, or any other algorithm is refused before a key is looked at."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import jwt

from kit.errors import Unauthenticated
from klik.auth.v1 import auth_pb2, auth_pb2_grpc

ALGORITHM = "EdDSA"
DEFAULT_ISSUER = "klik-auth"
DEFAULT_AUDIENCE = "klik"
# The claims every access token carries (API.md / issue 3).
REQUIRED_CLAIMS = ("iss", "aud", "sub", "role", "iat", "exp", "jti")
# The session family (auth's refresh-token family) a token was issued from; optional.
SESSION_CLAIM = "sid"
# Whether the account's email address is verified (auth sets it on every token it mints).
# A token without it (minted before auth knew verification) counts as verified.
EMAIL_VERIFIED_CLAIM = "ev"
# True when the account's role requires two-factor sign-in (auth's
# KLIK_REQUIRE_2FA_ROLES) and the account has not turned it on: kit.callers refuses
# such a token every role-restricted RPC (TWO_FACTOR_REQUIRED). Absent otherwise.
TWO_FACTOR_MISSING_CLAIM = "tfr"

JwksSource = Callable[[], Awaitable[Sequence[Mapping[str, str]]]]


@dataclass(frozen=True)
class AccessClaims:
    subject: str  # the user id
    role: str
    token_id: str
    issued_at: float
    expires_at: float
    session_id: str = ""  # the SESSION_CLAIM; empty when the token carries none
    email_verified: bool = True  # the EMAIL_VERIFIED_CLAIM; True when absent
    two_factor_missing: bool = False  # the TWO_FACTOR_MISSING_CLAIM; False when absent


def invalid(message: str = "access token is invalid") -> Unauthenticated:
    return Unauthenticated("INVALID_TOKEN", message)


def grpc_jwks_source(channel: grpc.aio.Channel, timeout: float = 3.0) -> JwksSource:
    """Fetch auth's JWKS over gRPC on `channel`."""
    stub = auth_pb2_grpc.AuthServiceStub(channel)

    async def fetch() -> Sequence[Mapping[str, str]]:
        reply = await stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=timeout)
        return [
            {"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.use}
            for k in reply.keys
        ]

    return fetch


class TokenVerifier:
    def __init__(
        self,
        source: JwksSource,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        leeway: float = 30.0,
        refetch_interval: float = 30.0,
        max_age: float = 600.0,
        cache_size: int = 10_000,
        cache_seconds: float = 60.0,
    ) -> None:
        self._source = source
        self.issuer = issuer
        self.audience = audience
        self._leeway = leeway
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._cache_size = cache_size
        self._cache_seconds = cache_seconds
        # token -> (claims, until): tokens that verified, keyed by the whole token
        # (signature included), so only that very token can hit.
        self._verified: OrderedDict[str, tuple[AccessClaims, float]] = OrderedDict()

    async def verify(self, token: str) -> AccessClaims:
        """The token's claims, or `Unauthenticated` (`TOKEN_EXPIRED` when only its
        time is up, so clients know to refresh; `INVALID_TOKEN` otherwise).

        A token that verified is remembered (at most `cache_size` of them, least
        recently used dropped first) until its `exp` or for `cache_seconds`, whichever
        comes first: a client sends the same token on every call, and its signature
        check is most of the CPU a call costs. `forget_user` drops a user's tokens
        (revocation; the callers check revoked users on every call regardless)."""
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            if now < cached[1]:
                self._verified.move_to_end(token)
                return cached[0]
            del self._verified[token]
        claims = await self._verify(token)
        if self._cache_size > 0:
            until = min(claims.expires_at, now + self._cache_seconds)
            if now < until:
                self._verified[token] = (claims, until)
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        return claims

    def forget_user(self, subject: str) -> int:
        """Drop the remembered tokens of user `subject`; how many there were."""
        gone = [t for t, (claims, _) in self._verified.items() if claims.subject == subject]
        for token in gone:
            del self._verified[token]
        return len(gone)

    async def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid() from None
        if header.get("alg") != ALGORITHM:
            raise invalid()
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("TOKEN_EXPIRED", "access token has expired") from None
        except jwt.PyJWTError:
            raise invalid() from None
        return AccessClaims(
            subject=str(claims["sub"]),
            role=str(claims["role"]),
            token_id=str(claims["jti"]),
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
            session_id=str(claims.get(SESSION_CLAIM) or ""),
            email_verified=claims.get(EMAIL_VERIFIED_CLAIM) is not False,
            two_factor_missing=claims.get(TWO_FACTOR_MISSING_CLAIM) is True,
        )

    async def _key(self, kid: str) -> Any:
        if kid in self._keys and time.monotonic() - self._fetched_at <= self._max_age:
            return self._keys[kid]
        async with self._lock:
            # Decided under the lock: callers that queued behind a refresh reuse it.
            since = time.monotonic() - self._fetched_at
            unknown = kid not in self._keys
            if since > self._max_age or (unknown and since >= self._refetch_interval):
                await self._refresh()
        if kid not in self._keys:
            raise invalid()
        return self._keys[kid]

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            keys = await self._source()
        except grpc.aio.AioRpcError as error:
            if self._keys:
                return  # keep verifying with the keys we have while auth is away
            raise Unauthenticated("AUTH_UNAVAILABLE", "cannot verify tokens right now") from error
        fresh: dict[str, Any] = {}
        for jwk in keys:
            if jwk.get("alg", ALGORITHM) != ALGORITHM or not jwk.get("kid"):
                continue
            fresh[jwk["kid"]] = jwt.PyJWK(dict(jwk)).key
        self._keys = fresh
