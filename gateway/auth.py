"""Auth at the edge: the bearer token of every non-public request is verified here,
with the same verifier the services use (kit.tokens), before any upstream is called.

It is an optimisation, not the boundary (ARCHITECTURE rule 5): services verify the
forwarded token again. What it buys: forged, expired and revoked tokens cost no
upstream call, rate limits can be drawn per user, and the SSE stream (which has no
service behind it) knows whose events to send."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import jwt
from starlette.requests import HTTPConnection

from gateway.errors import GatewayError
from kit.callers import RevokedUsers
from kit.errors import Unauthenticated
from kit.tokens import AccessClaims, JwksSource, TokenVerifier

REALM = "klik"
# kit.tokens raises this reason when auth's keys cannot be fetched at all: the token
# may be fine, so the client must not be told to sign in again.
AUTH_UNAVAILABLE = "AUTH_UNAVAILABLE"
VERIFIED_CACHE_SECONDS = 60.0
ACCESS_TOKEN_PARAMETER = "access_token"
VERIFIED_CACHE_SIZE = 10_000


def bearer_challenge(error: str = "", description: str = "") -> str:
    """RFC 6750 § 3: no error attributes when the request carried no token."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}"'
    if description:
        challenge += f', error_description="{description}"'
    return challenge


def auth_unavailable() -> GatewayError:
    return GatewayError(
        "UNAVAILABLE",
        "cannot verify tokens right now",
        code=AUTH_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


def unauthenticated(code: str, message: str, *, token_given: bool) -> GatewayError:
    challenge = bearer_challenge("invalid_token", message) if token_given else bearer_challenge()
    return GatewayError(
        "UNAUTHENTICATED", message, code=code, headers={"WWW-Authenticate": challenge}
    )


class EdgeRevocations(RevokedUsers):
    """The revoked users, and who hears of each revocation as it happens (the event
    hub, which ends the user's open streams)."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Callable[[str], None]] = []

    def revoke(self, user_id: str, for_seconds: float = 3600.0) -> None:
        super().revoke(user_id, for_seconds)
        for listener in self.listeners:
            listener(user_id)


class EdgeAuth:
    """`source` fetches auth's JWKS (kit.tokens.grpc_jwks_source on the gateway's
    auth channel)."""

    def __init__(self, source: JwksSource, *, issuer: str, audience: str, leeway: float) -> None:
        self._source = source
        # Until one fetch has succeeded, a token that does not verify may be a good
        # token we cannot check yet: that is 503, not 401 (the verifier itself waits
        # `refetch_interval` before fetching again and would say "invalid").
        self.keys_loaded = False
        # A short refetch interval: after auth was unreachable, we retry soon.
        self.verifier = TokenVerifier(
            self._fetch, issuer=issuer, audience=audience, leeway=leeway, refetch_interval=5.0
        )
        self.revocations = EdgeRevocations()
        self._verified: dict[str, tuple[AccessClaims, float]] = {}  # token -> (claims, until)

    async def _verify(self, token: str) -> AccessClaims:
        """`verifier.verify`, remembered for a short while: a client sends the same
        token on every request, and checking its signature is most of the gateway's
        CPU per call. Keyed by the whole token (signature included), so only a token
        that verified can hit; revocation is checked on every request regardless."""
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and now < cached[1]:
            return cached[0]
        claims = await self.verifier.verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified = {t: c for t, c in self._verified.items() if now < c[1]}
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
        # Never past the token's own expiry; and a key auth withdrew stops working
        # here within VERIFIED_CACHE_SECONDS.
        self._verified[token] = (claims, min(claims.expires_at, now + VERIFIED_CACHE_SECONDS))
        return claims

    async def _fetch(self) -> Sequence[Mapping[str, str]]:
        keys = await self._source()
        self.keys_loaded = True
        return keys

    async def authenticate(
        self, connection: HTTPConnection, *, query_token: bool = False
    ) -> AccessClaims:
        """The verified claims of the request's bearer token, or a GatewayError: 401
        with `WWW-Authenticate`, or 503 when auth's keys cannot be fetched.

        `query_token`: also accept the token as the `access_token` query parameter
        (RFC 6750 § 2.3) when no Authorization header is sent. Only for event
        streams: a browser's EventSource cannot send headers. The gateway logs no
        query strings, and access tokens are short-lived."""
        header = presented_authorization(connection, query_token=query_token)
        if header is None:
            raise unauthenticated(
                "UNAUTHENTICATED", "this route needs a bearer token", token_given=False
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or not _printable_ascii(token):
            raise unauthenticated(
                "INVALID_TOKEN", "malformed Authorization header", token_given=True
            )
        try:
            claims = await self._verify(token)
        except Unauthenticated as error:
            if error.reason == AUTH_UNAVAILABLE or (not self.keys_loaded and _well_formed(token)):
                raise auth_unavailable() from None
            raise unauthenticated(error.reason, error.message, token_given=True) from None
        if self.revocations.is_revoked(claims.subject) or self.revocations.is_session_revoked(
            claims.session_id
        ):
            raise unauthenticated(
                "INVALID_TOKEN", "access token is no longer valid", token_given=True
            )
        return claims


def presented_authorization(connection: HTTPConnection, *, query_token: bool) -> str | None:
    """The request's `Authorization` header; with `query_token` and no header, the
    `access_token` query parameter as that header would say it."""
    header = connection.headers.get("authorization")
    if header is None and query_token and ACCESS_TOKEN_PARAMETER in connection.query_params:
        header = "Bearer " + connection.query_params[ACCESS_TOKEN_PARAMETER]
    return header


def _well_formed(token: str) -> bool:
    """A JWT whose header parses: one we could only judge with auth's keys."""
    try:
        jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return False
    return True


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()
