"""An OpenID provider standing in for Google, Keycloak and the like: the
authorization-code flow with PKCE (S256 only), `state` and `nonce`, under `/oidc`
(its issuer is `{sandbox}/oidc`).

    GET  /oidc/.well-known/openid-configuration   discovery (OpenID Connect Discovery 1.0)
    GET  /oidc/authorize      signs in the person `login_hint` (an email) names, without
                              a form, and redirects to `redirect_uri` with `code` and
                              `state`; `email_verified=false` makes the IdP say the
                              address is not verified (default true)
    POST /oidc/token          code -> tokens; client_secret_basic or client_secret_post;
                              a code works once, for CODE_SECONDS, with its PKCE verifier
                              and its redirect_uri; the ID token is RS256 with `aud` =
                              the client id, `nonce`, `email`, `email_verified`, `sub`
    GET  /oidc/jwks           the public key that verifies its ID tokens
    GET  /oidc/userinfo       the signed-in person, for the access token (Bearer)

A person's `sub` is derived from their email, so the same person gets the same
subject every time. Clients: CLIENT_ID / CLIENT_SECRET are always registered (what
the embedded stack configures); tests may register more. Control endpoints for
tests (no faults, not recorded):

    POST   /_sandbox/oidc/clients   {"client_id", "client_secret"}: register a client
    POST   /_sandbox/oidc/tamper    how the next ID tokens are wrong, until DELETE:
                                    {"sign_with": "other_key"} (same `kid`, a key the
                                    JWKS does not hold), {"aud": "..."},
                                    {"nonce": "..."}, {"expires_in": -3600}
    DELETE /_sandbox/oidc/tamper    tokens are right again

Everything is in memory (one `Provider` per app) and every request but the
control ones is served through `Sandbox.serve` (recorded, faults apply)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox import serving
from sandbox.faults import Fault

CLIENT_ID = "klik"
CLIENT_SECRET = "klik-sandbox-secret"
CODE_SECONDS = 60.0
TOKEN_SECONDS = 3600
KEY_ID = "sandbox-oidc-1"
TAMPER_KEYS = ("sign_with", "aud", "nonce", "expires_in")
CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "email",
    "email_verified",
    "name",
]


@dataclass
class Grant:
    """What one authorization code stands for."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    email: str
    email_verified: bool
    issued_at: float
    used: bool = False


@dataclass
class Provider:
    key: RSAKey = field(default_factory=lambda: _new_key())
    other_key: RSAKey = field(default_factory=lambda: _new_key())
    clients: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: CLIENT_SECRET})
    codes: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    tamper: dict[str, Any] = field(default_factory=dict)


def _new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"})


def provider_of(request: Request) -> Provider:
    """The app's provider, made on first use."""
    state = request.app.state
    if not isinstance(getattr(state, "oidc", None), Provider):
        state.oidc = Provider()
    found: Provider = state.oidc
    return found


def issuer(request: Request) -> str:
    return serving.base_url(request) + "/oidc"


def subject_of(email: str) -> str:
    return "sandbox-" + hashlib.sha256(email.encode()).hexdigest()[:24]


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status)


async def _served(request: Request, answer: Any) -> Response:
    """Serve through the sandbox (recorded, faults apply)."""

    async def produce(fault: Fault) -> Response:
        response: Response = await answer()
        return response

    return await serving.of(request).serve(request, b"", "", produce)


async def discovery(request: Request) -> Response:
    async def answer() -> Response:
        base = issuer(request)
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "userinfo_endpoint": f"{base}/userinfo",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": CLAIMS,
            }
        )

    return await _served(request, answer)


async def authorize(request: Request) -> Response:
    async def answer() -> Response:
        provider = provider_of(request)
        query = request.query_params
        client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
        if client_id not in provider.clients:
            return _oauth_error("invalid_client", "unknown client_id")
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            return _oauth_error("invalid_request", "redirect_uri must be an http(s) URL")

        def back(**params: str) -> Response:
            if query.get("state"):
                params["state"] = query["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", 302)

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if "openid" not in query.get("scope", "").split():
            return back(error="invalid_scope", error_description="scope must include openid")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE S256 is required")
        email = query.get("login_hint", "").strip().lower()
        if "@" not in email:
            return back(error="login_required", error_description="login_hint names nobody")
        code = secrets.token_urlsafe(24)
        provider.codes[code] = Grant(
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge=query["code_challenge"],
            nonce=query.get("nonce", ""),
            email=email,
            email_verified=query.get("email_verified", "true").lower() != "false",
            issued_at=time.time(),
        )
        return back(code=code)

    return await _served(request, answer)


def _client(request: Request, form: dict[str, str]) -> str | None:
    """The authenticated client id (client_secret_basic, else client_secret_post)."""
    provider = provider_of(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except ValueError:
            return None
        client_id, _, secret = decoded.partition(":")
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    expected = provider.clients.get(client_id)
    if expected is None or not secrets.compare_digest(expected, secret):
        return None
    return client_id


async def token(request: Request) -> Response:
    async def answer() -> Response:
        provider = provider_of(request)
        body = (await request.body()).decode("utf-8", "replace")
        form = dict(parse_qsl(body, keep_blank_values=True))
        client_id = _client(request, form)
        if client_id is None:
            return _oauth_error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type", "only authorization_code")
        grant = provider.codes.get(form.get("code", ""))
        if grant is None or grant.client_id != client_id:
            return _oauth_error("invalid_grant", "unknown code")
        if grant.used:
            return _oauth_error("invalid_grant", "the code was used already")
        grant.used = True  # whatever follows, a code is tried once
        if time.time() - grant.issued_at > CODE_SECONDS:
            return _oauth_error("invalid_grant", "the code expired")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _oauth_error("invalid_grant", "redirect_uri differs from the authorize one")
        if s256(form.get("code_verifier", "")) != grant.code_challenge:
            return _oauth_error("invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(24)
        provider.access_tokens[access_token] = grant
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "scope": "openid email profile",
                "id_token": id_token(request, provider, grant),
            },
            headers={"cache-control": "no-store"},
        )

    return await _served(request, answer)


def id_token(request: Request, provider: Provider, grant: Grant) -> str:
    tamper = provider.tamper
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer(request),
        "sub": subject_of(grant.email),
        "aud": tamper.get("aud", grant.client_id),
        "iat": now,
        "exp": now + int(tamper.get("expires_in", TOKEN_SECONDS)),
        "auth_time": int(grant.issued_at),
        "email": grant.email,
        "email_verified": grant.email_verified,
        "name": grant.email.split("@", 1)[0],
    }
    nonce = tamper.get("nonce", grant.nonce)
    if nonce:
        claims["nonce"] = nonce
    key = provider.other_key if tamper.get("sign_with") == "other_key" else provider.key
    return jwt.encode({"alg": "RS256", "kid": KEY_ID}, claims, key)


async def jwks(request: Request) -> Response:
    async def answer() -> Response:
        public = provider_of(request).key.as_dict(private=False)
        return JSONResponse({"keys": [public]})

    return await _served(request, answer)


async def userinfo(request: Request) -> Response:
    async def answer() -> Response:
        header = request.headers.get("authorization", "")
        grant = provider_of(request).access_tokens.get(header.removeprefix("Bearer ").strip())
        if not header.startswith("Bearer ") or grant is None:
            return Response(
                status_code=401, headers={"www-authenticate": 'Bearer error="invalid_token"'}
            )
        return JSONResponse(
            {
                "sub": subject_of(grant.email),
                "email": grant.email,
                "email_verified": grant.email_verified,
            }
        )

    return await _served(request, answer)


async def clients(request: Request) -> Response:
    try:
        data = await request.json()
        client_id, secret = data["client_id"], data["client_secret"]
        if not (isinstance(client_id, str) and isinstance(secret, str) and client_id and secret):
            raise TypeError("client_id and client_secret must be strings")
    except (ValueError, KeyError, TypeError) as error:
        return JSONResponse({"error": f"bad client: {error}"}, 400)
    provider_of(request).clients[client_id] = secret
    return JSONResponse({"client_id": client_id}, 201)


async def tamper(request: Request) -> Response:
    provider = provider_of(request)
    if request.method == "DELETE":
        provider.tamper.clear()
        return Response(status_code=204)
    try:
        data = await request.json()
        if not isinstance(data, dict) or not set(data) <= set(TAMPER_KEYS):
            raise ValueError(f"the body takes only {', '.join(TAMPER_KEYS)}")
        if data.get("sign_with", "other_key") != "other_key":
            raise ValueError('sign_with takes "other_key"')
        if not isinstance(data.get("expires_in", 0), int):
            raise ValueError("expires_in must be an integer")
    except ValueError as error:
        return JSONResponse({"error": f"bad tamper: {error}"}, 400)
    provider.tamper = dict(data)
    return JSONResponse({"tamper": provider.tamper})


ROUTES = [
    Route("/oidc/.well-known/openid-configuration", discovery, methods=["GET"]),
    Route("/oidc/authorize", authorize, methods=["GET"]),
    Route("/oidc/token", token, methods=["POST"]),
    Route("/oidc/jwks", jwks, methods=["GET"]),
    Route("/oidc/userinfo", userinfo, methods=["GET"]),
    Route("/_sandbox/oidc/clients", clients, methods=["POST"]),
    Route("/_sandbox/oidc/tamper", tamper, methods=["POST", "DELETE"]),
]
