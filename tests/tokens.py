"""Credentials for tests of any service: end-user access tokens signed like auth signs
them, the JWKS that verifies them served over gRPC like auth serves it, and service
identities.

    authority = TokenAuthority()
    async with authority.serve() as jwks:           # AuthService.GetJwks on jwks.port
        env = {"KLIK_AUTH_PORT": str(jwks.port)}     # what a service's settings read
        metadata = bearer(authority.access_token("user-1", role="admin"))
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from kit.identity import ServiceIdentity, generate_keys, load_identity
from kit.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from klik.auth.v1 import auth_pb2, auth_pb2_grpc

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    """Call metadata presenting `token`."""
    return (("authorization", f"Bearer {token}"),)


@dataclass
class TokenAuthority:
    """Signs access tokens as auth does (EdDSA, `kid` header, every required claim)."""

    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    kid: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def access_token(
        self, subject: str, role: str = "user", *, lifetime: float = 900.0, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "role": role,
            "iat": now,
            "exp": now + int(lifetime),
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def user(self, subject: str, role: str = "user") -> Metadata:
        """Call metadata of a signed-in user."""
        return bearer(self.access_token(subject, role))

    def jwks(self) -> auth_pb2.GetJwksResponse:
        jwk = OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return auth_pb2.GetJwksResponse(
            keys=[
                auth_pb2.Jwk(
                    kid=self.kid, alg="EdDSA", use="sig", kty="OKP", crv="Ed25519", x=jwk["x"]
                )
            ]
        )

    @asynccontextmanager
    async def serve(self, port: int = 0) -> AsyncIterator[JwksServer]:
        """An AuthService that answers only GetJwks (other RPCs: UNIMPLEMENTED), on
        127.0.0.1:`port` (0: a free one)."""
        server = grpc.aio.server()
        auth_pb2_grpc.add_AuthServiceServicer_to_server(_JwksOnly(self), server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        try:
            yield JwksServer(bound)
        finally:
            await server.stop(0)


@dataclass(frozen=True)
class JwksServer:
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class _JwksOnly(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, authority: TokenAuthority) -> None:
        self.authority = authority

    async def GetJwks(self, request: Any, context: Any) -> auth_pb2.GetJwksResponse:
        return self.authority.jwks()


def service_identities(keys_dir: Path, *names: str) -> dict[str, ServiceIdentity]:
    """Create (if missing) and load the identities of `names` in `keys_dir`; a service
    configured with KLIK_SERVICE_KEYS_DIR=`keys_dir` trusts every one of them."""
    generate_keys(keys_dir, list(names))
    identities = {}
    for name in names:
        identity = load_identity(keys_dir, name)
        assert identity is not None, f"no key for {name} in {keys_dir}"
        identities[name] = identity
    return identities
