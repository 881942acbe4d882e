"""Auth's social sign-in settings (README § Social sign-in (OIDC)): the OpenID
providers, where the provider sends the browser back, which app pages the flow may
end on, and how long its single-use values live."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from kit.config import ConfigError, env_float, env_str

NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class OidcProvider:
    """One entry of KLIK_OIDC_PROVIDERS."""

    name: str  # in the routes: /v1/auth/oidc/{name}/start
    issuer: str  # discovery is {issuer}/.well-known/openid-configuration
    client_id: str
    client_secret: str
    scope: str = "openid email profile"
    # client_secret_basic (the default) or client_secret_post.
    token_endpoint_auth_method: str = "client_secret_basic"


@dataclass(frozen=True)
class OidcOptions:
    providers: tuple[OidcProvider, ...] = ()  # KLIK_OIDC_PROVIDERS (a JSON list)
    # The gateway's public URL, as the provider sends the browser to it:
    # redirect_uri = {callback_base}/v1/auth/oidc/{provider}/callback
    # (KLIK_OIDC_CALLBACK_BASE; "": KLIK_PUBLIC_URL). Register it at the provider.
    callback_base: str = ""
    # Origins besides KLIK_PUBLIC_URL's that a start's `redirect` may name
    # (KLIK_OIDC_REDIRECT_ORIGINS, comma-separated `scheme://host[:port]`).
    redirect_origins: frozenset[str] = frozenset()
    # A started sign-in (state, nonce, PKCE verifier) lives this long
    # (KLIK_OIDC_FLOW_TTL_SECONDS) ...
    flow_seconds: float = 600.0
    # ... the one-time code and the link token this long (KLIK_OIDC_CODE_TTL_SECONDS).
    code_seconds: float = 120.0
    # How long a provider's discovery document and JWKS are trusted before they are
    # fetched again (KLIK_OIDC_METADATA_TTL_SECONDS); an unknown `kid` refetches sooner.
    metadata_seconds: float = 3600.0
    http_timeout_seconds: float = 10.0  # KLIK_OIDC_HTTP_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OidcOptions:
        options = cls(
            providers=parse_providers(env_str("KLIK_OIDC_PROVIDERS", "", env)),
            callback_base=env_str("KLIK_OIDC_CALLBACK_BASE", "", env).rstrip("/"),
            redirect_origins=frozenset(
                origin.strip().rstrip("/")
                for origin in env_str("KLIK_OIDC_REDIRECT_ORIGINS", "", env).split(",")
                if origin.strip()
            ),
            flow_seconds=env_float("KLIK_OIDC_FLOW_TTL_SECONDS", 600.0, env),
            code_seconds=env_float("KLIK_OIDC_CODE_TTL_SECONDS", 120.0, env),
            metadata_seconds=env_float("KLIK_OIDC_METADATA_TTL_SECONDS", 3600.0, env),
            http_timeout_seconds=env_float("KLIK_OIDC_HTTP_TIMEOUT_SECONDS", 10.0, env),
        )
        options.check()
        return options

    def provider(self, name: str) -> OidcProvider | None:
        return next((p for p in self.providers if p.name == name), None)

    def check(self) -> None:
        if min(self.flow_seconds, self.code_seconds, self.metadata_seconds) <= 0:
            raise ConfigError("KLIK_OIDC_*_SECONDS settings must be positive")
        if self.http_timeout_seconds <= 0:
            raise ConfigError("KLIK_OIDC_HTTP_TIMEOUT_SECONDS must be positive")
        if self.callback_base and urlsplit(self.callback_base).scheme not in ("http", "https"):
            raise ConfigError("KLIK_OIDC_CALLBACK_BASE must be an http(s) URL")
        for origin in self.redirect_origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ConfigError(f"KLIK_OIDC_REDIRECT_ORIGINS: {origin!r} is not an origin")


def parse_providers(text: str) -> tuple[OidcProvider, ...]:
    """KLIK_OIDC_PROVIDERS: `[{"name", "issuer", "client_id", "client_secret"}, ...]`
    (optional `scope`, `token_endpoint_auth_method`); ConfigError on anything else."""
    if not text.strip():
        return ()
    try:
        entries = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"KLIK_OIDC_PROVIDERS is not JSON: {error}") from None
    if not isinstance(entries, list):
        raise ConfigError("KLIK_OIDC_PROVIDERS must be a JSON list of providers")
    providers: list[OidcProvider] = []
    for entry in entries:
        required = ("name", "issuer", "client_id", "client_secret")
        optional = ("scope", "token_endpoint_auth_method")
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), str) and entry[key] for key in required
        ):
            raise ConfigError(f"KLIK_OIDC_PROVIDERS: each provider needs {', '.join(required)}")
        unknown = set(entry) - set(required) - set(optional)
        if unknown:
            raise ConfigError(f"KLIK_OIDC_PROVIDERS: unknown keys {sorted(unknown)}")
        provider = OidcProvider(**{key: str(value) for key, value in entry.items()})
        if not set(provider.name) <= NAME_CHARACTERS or len(provider.name) > 40:
            raise ConfigError(f"KLIK_OIDC_PROVIDERS: name {provider.name!r} is not a-z0-9-_")
        if urlsplit(provider.issuer).scheme not in ("http", "https"):
            raise ConfigError(f"KLIK_OIDC_PROVIDERS: {provider.name}'s issuer is not a URL")
        if "openid" not in provider.scope.split():
            raise ConfigError(f"KLIK_OIDC_PROVIDERS: {provider.name}'s scope lacks openid")
        if provider.token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ConfigError(
                f"KLIK_OIDC_PROVIDERS: {provider.name}'s token_endpoint_auth_method must be "
                "client_secret_basic or client_secret_post"
            )
        if any(p.name == provider.name for p in providers):
            raise ConfigError(f"KLIK_OIDC_PROVIDERS: {provider.name} is listed twice")
        providers.append(provider)
    return tuple(providers)
