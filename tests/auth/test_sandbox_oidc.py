"""The sandbox's OpenID provider over real HTTP, on its own: discovery, the
authorize redirect, the token endpoint's checks (client, PKCE, redirect_uri, single
use) and an ID token its JWKS verifies."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from sandbox.oidc import CLIENT_ID, CLIENT_SECRET, s256, subject_of
from tests.auth.conftest import MailReader

VERIFIER = "v" * 50
REDIRECT = "http://127.0.0.1:1/callback"


async def authorize(http: httpx.AsyncClient, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": "st",
        "nonce": "n-1",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        "login_hint": "Grace@Example.com",
        **extra,
    }
    reply = await http.get("/oidc/authorize", params=params)
    assert reply.status_code == 302, reply.text
    query = parse_qs(urlsplit(reply.headers["location"]).query)
    assert query["state"] == ["st"]
    [code] = query["code"]
    return code


async def token(http: httpx.AsyncClient, code: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        **extra,
    }
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    return await http.post("/oidc/token", data=form, headers={"authorization": f"Basic {basic}"})


async def test_discovery_names_its_endpoints(mail: MailReader) -> None:
    reply = await mail.http.get("/oidc/.well-known/openid-configuration")
    document = reply.json()
    issuer = f"{mail.http.base_url}/oidc"
    assert document["issuer"] == issuer
    assert document["token_endpoint"] == f"{issuer}/token"
    assert document["code_challenge_methods_supported"] == ["S256"]


async def test_a_code_gives_an_id_token_its_jwks_verifies_once(mail: MailReader) -> None:
    http = mail.http
    code = await authorize(http)
    reply = await token(http, code)
    assert reply.status_code == 200, reply.text
    keys = KeySet.import_key_set((await http.get("/oidc/jwks")).json())
    claims = jwt.decode(reply.json()["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["aud"] == CLIENT_ID and claims["nonce"] == "n-1"
    assert claims["email"] == "grace@example.com" and claims["email_verified"] is True
    assert claims["sub"] == subject_of("grace@example.com")
    info = await http.get(
        "/oidc/userinfo", headers={"authorization": f"Bearer {reply.json()['access_token']}"}
    )
    assert info.json()["sub"] == claims["sub"]
    again = await token(http, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_the_token_endpoint_checks_pkce_redirect_uri_and_the_client(
    mail: MailReader,
) -> None:
    http = mail.http
    wrong_verifier = await token(http, await authorize(http), code_verifier="w" * 50)
    assert wrong_verifier.json()["error_description"] == "PKCE verification failed"
    wrong_redirect = await token(http, await authorize(http), redirect_uri="http://evil/cb")
    assert wrong_redirect.json()["error"] == "invalid_grant"
    by_post = await http.post(
        "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": await authorize(http),
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": CLIENT_ID,
            "client_secret": "not-the-secret",
        },
    )
    assert by_post.status_code == 401 and by_post.json()["error"] == "invalid_client"


async def test_an_unverified_hint_and_a_plain_challenge(mail: MailReader) -> None:
    http = mail.http
    reply = await token(http, await authorize(http, email_verified="false"))
    claims = jwt.decode(
        reply.json()["id_token"],
        KeySet.import_key_set((await http.get("/oidc/jwks")).json()),
        algorithms=["RS256"],
    ).claims
    assert claims["email_verified"] is False
    plain = await http.get(
        "/oidc/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "code_challenge": VERIFIER,
            "code_challenge_method": "plain",
        },
    )
    assert plain.status_code == 302
    assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]
