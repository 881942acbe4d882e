"""Service identities: how internal-only RPCs know their caller is a klik service.

Each service holds its own Ed25519 key (`<name>.key`) and signs short-lived JWTs for
the service it calls (`aud: "service:<callee>"`, `sub: "service:<caller>"`). Callees
trust the public keys (`<name>.pub`) found in `KLIK_SERVICE_KEYS_DIR`. Tokens are
self-signed rather than issued by auth so that internal calls (generation placing
wallet holds) keep working while auth is down, and a token taken from one service
cannot be replayed against another. End-user tokens never pass as service
identities: different issuer, different keys.

The embedded stack and the tests create the key files (`generate_keys`); a deployment
mounts each service's private key and every service's public key."""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kit.errors import Unauthenticated

SERVICE_ISSUER = "klik-service"
TOKEN_LIFETIME_SECONDS = 300.0
# Renew a cached token this long before it expires, so it never arrives stale.
RENEW_BEFORE_SECONDS = 60.0
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def service_subject(name: str) -> str:
    return f"service:{name}"


@dataclass
class ServiceIdentity:
    """This service's signing key; `token(callee)` is what it presents."""

    name: str
    key: Ed25519PrivateKey
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict)

    def token(self, callee: str) -> str:
        cached = self._cache.get(callee)
        now = time.time()
        if cached is not None and cached[1] - now > RENEW_BEFORE_SECONDS:
            return cached[0]
        expires = now + TOKEN_LIFETIME_SECONDS
        token = jwt.encode(
            {
                "iss": SERVICE_ISSUER,
                "sub": service_subject(self.name),
                "aud": service_subject(callee),
                "iat": int(now),
                "exp": int(expires),
                "jti": uuid.uuid4().hex,
            },
            self.key,
            algorithm="EdDSA",
            headers={"kid": service_subject(self.name)},
        )
        self._cache[callee] = (token, expires)
        return token


@dataclass(frozen=True)
class ServiceTrust:
    """The public keys of the services this one accepts calls from."""

    keys: dict[str, Ed25519PublicKey]

    def verify(self, token: str, *, callee: str, leeway: float = 30.0) -> str:
        """The calling service's name, or `Unauthenticated`."""
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
            name = kid.removeprefix("service:")
            key = self.keys.get(name) if kid.startswith("service:") else None
            if key is None:
                raise jwt.InvalidTokenError("unknown service")
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=service_subject(callee),
                issuer=SERVICE_ISSUER,
                leeway=leeway,
                options={"require": ["iss", "aud", "sub", "iat", "exp"]},
            )
        except jwt.PyJWTError:
            raise Unauthenticated("INVALID_TOKEN", "service token is invalid") from None
        if claims["sub"] != service_subject(name):
            raise Unauthenticated("INVALID_TOKEN", "service token is invalid")
        return name


def is_service_token(token: str) -> bool:
    """Whether a (not yet verified) token claims to be a service identity."""
    try:
        return str(jwt.get_unverified_header(token).get("kid", "")).startswith("service:")
    except jwt.PyJWTError:
        return False


def load_identity(keys_dir: Path, name: str) -> ServiceIdentity | None:
    path = keys_dir / f"{name}.key"
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return ServiceIdentity(name, key)


def load_trust(keys_dir: Path) -> ServiceTrust:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(keys_dir.glob("*.pub")) if keys_dir.is_dir() else ():
        public = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(public, Ed25519PublicKey) and _NAME.match(path.stem):
            keys[path.stem] = public
    return ServiceTrust(keys)


def generate_keys(keys_dir: Path, names: list[str]) -> None:
    """Create `<name>.key` (private, mode 0600) and `<name>.pub` for every name that
    has none yet. Existing keys are kept: tokens signed with them stay valid."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        private_path = keys_dir / f"{name}.key"
        if private_path.exists():
            continue
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        (keys_dir / f"{name}.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
