"""Auth's OpenID Connect client for one provider, over httpx with Authlib: discovery
(cached), the authorization URL (PKCE S256, state, nonce), the code exchange at the
token endpoint, ID token verification against the provider's JWKS (cached, fetched
again on an unknown `kid`), and userinfo. No database, no gRPC: oidc.py drives it.

ID tokens are checked as OpenID Connect Core 1.0 § 3.1.3.7 says: an asymmetric
signature by a key of the issuer's JWKS (RS256, ES256, PS256 or EdDSA; never `none`
or a shared-secret HS*), `iss` is the issuer, `aud` holds the client id (and `azp`
is it when there are several audiences), `exp` is ahead and `iat` not ahead (60 s
leeway), `nonce` is the one this sign-in sent, `sub` is present."""

from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.base_client.errors import OAuthError

# Authlib 1.9 warns on import that it would rather use `httpx2`; httpx is what klik
# uses (and the client works with it). The warning would land, unformatted, in the
# service's JSON log before logging is set up.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from kit.errors import FailedPrecondition, Unauthenticated, Unavailable
from services.auth.oidc_settings import OidcProvider

ALLOWED_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")
LEEWAY_SECONDS = 60
# An unknown `kid` fetches the JWKS again, at most this often (the provider rotated).
JWKS_REFETCH_SECONDS = 5.0


def unavailable(provider: str, what: str) -> Unavailable:
    return Unavailable(
        "OIDC_PROVIDER_UNAVAILABLE", f"{provider}: {what}", details={"provider": provider}
    )


def invalid_id_token(check: str, message: str) -> Unauthenticated:
    return Unauthenticated(
        "OIDC_ID_TOKEN_INVALID", f"the ID token is not valid: {message}", details={"check": check}
    )


@dataclass(frozen=True)
class Discovery:
    """What auth uses of a provider's /.well-known/openid-configuration."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Tokens:
    """The token endpoint's answer."""

    id_token: str
    access_token: str


class ProviderClient:
    def __init__(
        self,
        provider: OidcProvider,
        redirect_uri: str,
        *,
        metadata_seconds: float,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.redirect_uri = redirect_uri
        self._metadata_seconds = metadata_seconds
        self._timeout = timeout_seconds
        self._transport = transport
        self._discovery: tuple[float, Discovery] | None = None
        self._jwks: tuple[float, KeySet] | None = None
        self._lock = asyncio.Lock()

    # ---- discovery and keys ---------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, transport=self._transport)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                reply = await http.get(url, headers={"accept": "application/json"})
            reply.raise_for_status()
            data = reply.json()
        except (httpx.HTTPError, ValueError) as error:
            raise unavailable(self.provider.name, f"{what} failed ({error})") from None
        if not isinstance(data, dict):
            raise unavailable(self.provider.name, f"{what} is not a JSON object")
        return data

    async def discovery(self) -> Discovery:
        """The provider's metadata, fetched at most every KLIK_OIDC_METADATA_TTL_SECONDS."""
        async with self._lock:
            cached = self._discovery
            if cached is not None and time.monotonic() - cached[0] < self._metadata_seconds:
                return cached[1]
            issuer = self.provider.issuer.rstrip("/")
            data = await self._get_json(
                f"{issuer}/.well-known/openid-configuration", "the discovery document"
            )
            try:
                found = Discovery(
                    issuer=str(data["issuer"]),
                    authorization_endpoint=str(data["authorization_endpoint"]),
                    token_endpoint=str(data["token_endpoint"]),
                    jwks_uri=str(data["jwks_uri"]),
                    userinfo_endpoint=str(data.get("userinfo_endpoint", "")),
                    algorithms=tuple(
                        alg
                        for alg in data.get("id_token_signing_alg_values_supported", ["RS256"])
                        if alg in ALLOWED_ALGORITHMS
                    ),
                )
            except KeyError as missing:
                raise unavailable(self.provider.name, f"discovery lacks {missing}") from None
            # OpenID Connect Discovery § 4.3: the issuer must be the one configured.
            if found.issuer.rstrip("/") != issuer:
                raise unavailable(self.provider.name, "discovery names another issuer")
            self._discovery = (time.monotonic(), found)
            return found

    async def _keys(self, *, refresh: bool = False) -> KeySet:
        discovery = await self.discovery()
        async with self._lock:
            cached = self._jwks
            if cached is not None:
                age = time.monotonic() - cached[0]
                if age < self._metadata_seconds and not (refresh and age >= JWKS_REFETCH_SECONDS):
                    return cached[1]
            data = await self._get_json(discovery.jwks_uri, "the JWKS")
            try:
                keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as error:
                raise unavailable(self.provider.name, f"the JWKS is unusable ({error})") from None
            self._jwks = (time.monotonic(), keys)
            return keys

    # ---- the flow -------------------------------------------------------------------

    def _oauth(self, discovery: Discovery) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.provider.client_id,
            client_secret=self.provider.client_secret,
            token_endpoint_auth_method=self.provider.token_endpoint_auth_method,
            scope=self.provider.scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout,
            transport=self._transport,
            token_endpoint=discovery.token_endpoint,
        )

    async def authorization_url(
        self, state: str, nonce: str, code_verifier: str, login_hint: str = ""
    ) -> str:
        discovery = await self.discovery()
        extra = {"login_hint": login_hint} if login_hint else {}
        async with self._oauth(discovery) as client:
            url, _ = client.create_authorization_url(
                discovery.authorization_endpoint,
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
                **extra,
            )
        return str(url)

    async def exchange(self, code: str, code_verifier: str) -> Tokens:
        """The tokens for `code`; UNAUTHENTICATED `OIDC_CODE_REJECTED` when the
        provider refuses it."""
        discovery = await self.discovery()
        try:
            async with self._oauth(discovery) as client:
                token = await client.fetch_token(
                    discovery.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
        except OAuthError as error:
            raise Unauthenticated(
                "OIDC_CODE_REJECTED",
                f"{self.provider.name} refused the code: {error.error}",
                details={"error": str(error.error)},
            ) from None
        except (httpx.HTTPError, ValueError) as error:
            raise unavailable(self.provider.name, f"the token endpoint failed ({error})") from None
        id_token, access_token = token.get("id_token"), token.get("access_token", "")
        if not isinstance(id_token, str) or not id_token:
            raise invalid_id_token("signature", "the token endpoint gave no ID token")
        return Tokens(id_token, str(access_token))

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once every check passed; UNAUTHENTICATED
        `OIDC_ID_TOKEN_INVALID` naming the first one that failed."""
        discovery = await self.discovery()
        algorithms = list(discovery.algorithms) or ["RS256"]
        keys = await self._keys()
        try:
            decoded = jwt.decode(id_token, keys, algorithms=algorithms)
        except JoseError as error:
            # An unknown kid may mean the provider rotated its keys: fetch them again once.
            if not isinstance(error, InvalidKeyIdError):
                raise invalid_id_token("signature", error.description or str(error)) from None
            keys = await self._keys(refresh=True)
            try:
                decoded = jwt.decode(id_token, keys, algorithms=algorithms)
            except (JoseError, ValueError) as again:
                raise invalid_id_token("signature", str(again)) from None
        except ValueError as error:
            raise invalid_id_token("signature", str(error)) from None
        claims = dict(decoded.claims)
        self._check_claims(claims, discovery.issuer, nonce)
        return claims

    def _check_claims(self, claims: dict[str, Any], issuer: str, nonce: str) -> None:
        client_id = self.provider.client_id
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            sub={"essential": True},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            claim = str(getattr(error, "claim", "") or "")
            check = claim if claim in ("iss", "sub", "aud", "exp", "iat", "nonce") else "claims"
            raise invalid_id_token(check, error.description or str(error)) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise invalid_id_token("aud", "several audiences and azp is not this client")
        if int(claims["iat"]) > time.time() + LEEWAY_SECONDS:
            raise invalid_id_token("iat", "issued in the future")

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo endpoint's claims (for providers whose ID token has no email)."""
        discovery = await self.discovery()
        if not discovery.userinfo_endpoint:
            return {}
        try:
            async with self._http() as http:
                reply = await http.get(
                    discovery.userinfo_endpoint,
                    headers={"authorization": f"Bearer {access_token}"},
                )
            reply.raise_for_status()
            data = reply.json()
        except (httpx.HTTPError, ValueError) as error:
            raise unavailable(self.provider.name, f"userinfo failed ({error})") from None
        return data if isinstance(data, dict) else {}


def provider_error(provider: str, error: str, description: str) -> FailedPrecondition:
    return FailedPrecondition(
        "OIDC_PROVIDER_ERROR",
        f"{provider} did not sign the user in: {error} {description}".strip(),
        details={"error": error[:100]},
    )
