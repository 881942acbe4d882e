"""Who is calling an RPC, and the checks RPCs make on it.

Every service authenticates every call itself (ARCHITECTURE rule 5): the gateway
checking the token first is an optimisation, not the boundary. An RPC body starts
with one of

    caller = await resources.callers.user(context)            # any signed-in user
    caller = await resources.callers.user(context, "admin")   # only these roles
                                       # (and not while their two-factor is missing)
    caller = await resources.callers.service(context, "generation")  # internal RPCs

A service identity never passes `user()`, and an end-user token never passes
`service()` (reason SERVICE_IDENTITY_REQUIRED)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import grpc

from kit.errors import PermissionDenied, Unauthenticated
from kit.identity import ServiceTrust, is_service_token, service_subject
from kit.tokens import TokenVerifier

ROLES = ("user", "premium", "moderator", "admin")
SERVICE_ROLE = "service"


@dataclass(frozen=True)
class Caller:
    subject: str  # a user id, or "service:<name>"
    role: str  # one of ROLES, or "service"
    service: str = ""  # the calling service's name, for service identities only
    token_id: str = ""
    session_id: str = ""  # the user's session (kit.tokens.SESSION_CLAIM); "" for services
    token: str = ""  # the raw bearer token, to call another service on the user's behalf
    # False only when the access token says the account's email is unverified (the
    # `ev` claim, kit.tokens.EMAIL_VERIFIED_CLAIM): paid work may be refused then.
    email_verified: bool = True
    # True when the caller's role requires two-factor sign-in and the account has
    # none yet (kit.tokens.TWO_FACTOR_MISSING_CLAIM): `user(context, *roles)` refuses.
    two_factor_missing: bool = False

    @property
    def is_service(self) -> bool:
        return bool(self.service)

    @property
    def user_id(self) -> str:
        if self.is_service:
            raise ValueError("a service identity has no user id")
        return self.subject


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str:
    """The first value of incoming metadata `key` (e.g. a webhook's signature
    header, which the gateway passes on), "" when the call carries none."""
    return next((str(v) for k, v in context.invocation_metadata() or () if k == key), "")


def bearer_token(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            break
    raise Unauthenticated("UNAUTHENTICATED", "missing bearer token")


class RevokedUsers:
    """Users whose live access tokens must fail at once (deleted accounts), and
    sessions whose access tokens must (ended sessions: their `sid` claim), each until
    their last token could have expired. Fed by kit.revocations."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._sessions: dict[str, float] = {}

    def revoke(self, user_id: str, for_seconds: float = 3600.0) -> None:
        _add(self._until, user_id, for_seconds)

    def is_revoked(self, user_id: str) -> bool:
        return _holds(self._until, user_id)

    def revoke_session(self, session_id: str, for_seconds: float = 3600.0) -> None:
        _add(self._sessions, session_id, for_seconds)

    def is_session_revoked(self, session_id: str) -> bool:
        return bool(session_id) and _holds(self._sessions, session_id)


def _add(revoked: dict[str, float], key: str, for_seconds: float) -> None:
    """Revoke `key` for `for_seconds`, forgetting the revocations that ran out."""
    now = time.time()
    revoked[key] = now + for_seconds
    for other, until in list(revoked.items()):
        if until <= now:
            del revoked[other]


def _holds(revoked: dict[str, float], key: str) -> bool:
    until = revoked.get(key)
    return until is not None and time.time() < until


class Callers:
    """Authenticates callers of one service. `revoke(user_id)` makes a user's live
    access tokens fail at once (a deleted user), `revoke_session(session_id)` those
    issued from one session (an ended session), for as long as they could live."""

    def __init__(self, service: str, verifier: TokenVerifier, trust: ServiceTrust) -> None:
        self.service_name = service
        self.verifier = verifier
        self.trust = trust
        self.revoked = RevokedUsers()

    async def identify(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        token = bearer_token(context)
        if is_service_token(token):
            name = self.trust.verify(token, callee=self.service_name)
            return Caller(service_subject(name), SERVICE_ROLE, service=name, token=token)
        claims = await self.verifier.verify(token)
        if self.revoked.is_revoked(claims.subject) or self.revoked.is_session_revoked(
            claims.session_id
        ):
            raise Unauthenticated("INVALID_TOKEN", "access token is no longer valid")
        return Caller(
            claims.subject,
            claims.role,
            token_id=claims.token_id,
            session_id=claims.session_id,
            token=token,
            email_verified=claims.email_verified,
            two_factor_missing=claims.two_factor_missing,
        )

    async def user(self, context: grpc.aio.ServicerContext[Any, Any], *roles: str) -> Caller:
        """An end user, optionally restricted to `roles`."""
        caller = await self.identify(context)
        if caller.is_service:
            raise PermissionDenied("USER_TOKEN_REQUIRED", "this call needs an end-user token")
        if roles and caller.role not in roles:
            raise PermissionDenied(
                "ROLE_REQUIRED",
                f"this call needs the role {' or '.join(roles)}",
                details={"required_roles": ",".join(roles)},
            )
        if roles and caller.two_factor_missing:
            raise PermissionDenied(
                "TWO_FACTOR_REQUIRED",
                f"the role {caller.role} must sign in with two factors: turn on two-factor "
                "sign-in (POST /v1/auth/2fa/totp), then log in again",
            )
        return caller

    async def service(self, context: grpc.aio.ServicerContext[Any, Any], *names: str) -> Caller:
        """A klik service, optionally one of `names`."""
        caller = await self.identify(context)
        if not caller.is_service or (names and caller.service not in names):
            raise PermissionDenied(
                "SERVICE_IDENTITY_REQUIRED", "this call is for klik services only"
            )
        return caller

    def revoke(self, user_id: str, for_seconds: float = 3600.0) -> None:
        self.revoked.revoke(user_id, for_seconds)
        self.verifier.forget_user(user_id)

    def revoke_session(self, session_id: str, for_seconds: float = 3600.0) -> None:
        # Remembered tokens need not be forgotten: identify() checks every call.
        self.revoked.revoke_session(session_id, for_seconds)
