"""User uploads: what content and the gateway agree on.

Content grants an upload (`POST /v1/uploads`: an id, the declared type and size, an
expiry) and signs it into a URL on the gateway; the gateway checks the signature and
expiry, streams the `PUT` body into the asset store under the upload's key (refusing
a body over the declared size or the hard maximum, or whose magic bytes are not the
declared type), and content turns the stored file into an asset on `:complete`.
The signature is an HMAC-SHA256 over the grant with `KLIK_UPLOAD_SECRET`, which both
processes must share; without it uploads are turned off.

    KLIK_UPLOAD_SECRET          HMAC key of upload URLs (""; the embedded stack makes one)
    KLIK_UPLOAD_MAX_BYTES       hard size limit of one upload (10 MiB)
    KLIK_UPLOAD_URL_TTL_SECONDS how long an upload URL is valid (900)
    KLIK_UPLOAD_BASE_URL        public prefix of upload URLs
                                    (http://127.0.0.1:$KLIK_GATEWAY_PORT/v1/uploads)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from kit.assets.keys import check_key
from kit.assets.settings import check_url
from kit.config import GATEWAY_PORT, ConfigError, env_float, env_int, env_str

# The types an upload may have, and the extension of its key.
UPLOAD_TYPES: Mapping[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
}
# Bytes `sniff` needs to tell every type apart.
SNIFF_BYTES = 12
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def sniff(head: bytes) -> str | None:
    """The upload type the first bytes of a file show (its magic number), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def upload_key(upload_id: str, content_type: str) -> str:
    """Where an upload's bytes are stored (and, once complete, served from /v1/files):
    the random upload id is the capability, like a job id in a generated key."""
    return check_key(f"uploads/{upload_id}{UPLOAD_TYPES[content_type]}")


@dataclass(frozen=True)
class UploadSettings:
    secret: str = field(repr=False)
    max_bytes: int = DEFAULT_MAX_BYTES
    url_ttl_seconds: float = 900.0
    base_url: str = f"http://127.0.0.1:{GATEWAY_PORT}/v1/uploads"

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UploadSettings:
        port = env_int("KLIK_GATEWAY_PORT", GATEWAY_PORT, env)
        settings = cls(
            secret=env_str("KLIK_UPLOAD_SECRET", "", env),
            max_bytes=env_int("KLIK_UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES, env),
            url_ttl_seconds=env_float("KLIK_UPLOAD_URL_TTL_SECONDS", 900.0, env),
            base_url=env_str(
                "KLIK_UPLOAD_BASE_URL", f"http://127.0.0.1:{port}/v1/uploads", env
            ).rstrip("/"),
        )
        check_url("KLIK_UPLOAD_BASE_URL", settings.base_url)
        if settings.max_bytes < 1:
            raise ConfigError("KLIK_UPLOAD_MAX_BYTES must be positive")
        if settings.url_ttl_seconds <= 0:
            raise ConfigError("KLIK_UPLOAD_URL_TTL_SECONDS must be positive")
        return settings


@dataclass(frozen=True)
class UploadGrant:
    """What an upload URL allows: one body of `content_type`, at most `size` bytes,
    for the upload `upload_id`, until `expires` (seconds since the epoch)."""

    upload_id: str
    content_type: str
    size: int
    expires: int

    def _message(self) -> bytes:
        return f"{self.upload_id}\n{self.content_type}\n{self.size}\n{self.expires}".encode()

    def signature(self, secret: str) -> str:
        return hmac.new(secret.encode(), self._message(), hashlib.sha256).hexdigest()

    def url(self, settings: UploadSettings) -> str:
        query = urlencode(
            {
                "type": self.content_type,
                "size": self.size,
                "expires": self.expires,
                "sig": self.signature(settings.secret),
            }
        )
        return f"{settings.base_url}/{self.upload_id}/content?{query}"


def verified_grant(
    secret: str, upload_id: str, query: Mapping[str, str], *, now: float
) -> UploadGrant:
    """The grant an upload URL's path and query carry, once its signature is checked
    (`InvalidUploadUrl`) and it has not expired (`ExpiredUploadUrl`)."""
    try:
        grant = UploadGrant(
            upload_id=upload_id,
            content_type=query["type"],
            size=int(query["size"]),
            expires=int(query["expires"]),
        )
        signature = query["sig"]
    except (KeyError, ValueError):
        raise InvalidUploadUrl from None
    if not secret or not hmac.compare_digest(signature, grant.signature(secret)):
        raise InvalidUploadUrl
    if grant.content_type not in UPLOAD_TYPES:
        raise InvalidUploadUrl
    if grant.expires <= now:
        raise ExpiredUploadUrl
    return grant


class InvalidUploadUrl(Exception):
    """Not a URL content signed."""


class ExpiredUploadUrl(Exception):
    """A signed URL past its expiry."""
