"""Social sign-in end to end over real HTTP: a real gateway in front of the real auth
service (PostgreSQL, nats-server), and the sandbox's OpenID provider on its own
socket. The client is a plain httpx client that follows each redirect by hand, as a
browser would: start (302 to the IdP) -> authorize (302 back) -> callback (302 to
the app with a one-time code) -> exchange (tokens, or link_required).

Every refusal the issue names is driven through the sandbox IdP: a forged `state`,
a replayed callback and a replayed code, a wrong `nonce`, an ID token signed by
another key, a wrong `aud`, an expired ID token; and an existing account is linked
only with its password."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.server import GatewayServer, server_config
from gateway.settings import GatewaySettings
from sandbox.oidc import CLIENT_ID, CLIENT_SECRET, subject_of
from services.auth import oidc_store, store
from tests.auth.conftest import PASSWORD, Auth, AuthStack, MailReader
from tests.auth.test_two_factor import code as totp_code
from tests.helpers import free_port, wait_for

APP_PAGE = "/app/signed-in"


@dataclass
class OidcStack:
    auth: Auth
    gateway: httpx.AsyncClient  # on the gateway; follows no redirect
    idp: MailReader  # the sandbox (its OpenID provider and its mail sink)
    public_url: str

    async def start(self, email: str, **params: str) -> httpx.Response:
        query = {"redirect": APP_PAGE, "app_state": "app-123", "login_hint": email, **params}
        return await self.gateway.get("/v1/auth/oidc/sandbox/start", params=query)

    async def at_idp(self, email: str, *, verified: bool = True) -> str:
        """The callback URL the IdP sends the browser back to."""
        started = await self.start(email)
        assert started.status_code == 302, started.text
        authorize = started.headers["location"]
        assert authorize.startswith(f"{self.idp.http.base_url}/oidc/authorize?")
        if not verified:
            authorize += "&email_verified=false"
        signed_in = await self.gateway.get(authorize)
        assert signed_in.status_code == 302, signed_in.text
        callback: str = signed_in.headers["location"]
        assert callback.startswith(f"{self.public_url}/v1/auth/oidc/sandbox/callback?")
        return callback

    async def sign_in(self, email: str, *, verified: bool = True) -> dict[str, Any]:
        """The exchange's answer for a whole sign-in."""
        back = await self.gateway.get(await self.at_idp(email, verified=verified))
        return await self.exchange(app_code(back))

    async def exchange(self, code: str) -> dict[str, Any]:
        reply = await self.gateway.post("/v1/auth/oidc:exchange", json={"code": code})
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        return answer

    async def tamper(self, **how: Any) -> None:
        reply = await self.idp.http.post("/_sandbox/oidc/tamper", json=how)
        assert reply.status_code == 200, reply.text

    async def accounts_with(self, email: str) -> int:
        async with self.auth.uow.read() as session:
            count = await session.scalar(
                select(func.count()).select_from(store.users).where(store.users.c.email == email)
            )
        return int(count or 0)


def app_code(back: httpx.Response) -> str:
    """The one-time code of the callback's redirect to the app (checked on the way)."""
    assert back.status_code == 302, back.text
    assert back.headers["cache-control"] == "no-store"
    location = urlsplit(back.headers["location"])
    assert location.path == APP_PAGE
    query = parse_qs(location.query)
    assert query["state"] == ["app-123"]
    assert "token" not in location.query  # no token ever travels in a URL
    [code] = query["code"]
    return code


def error_of(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert error["code"] == code, error
    return error


@pytest.fixture
async def oidc(stack: AuthStack, mail: MailReader, nats_url: str) -> AsyncIterator[OidcStack]:
    gateway_port = free_port()
    public_url = f"http://127.0.0.1:{gateway_port}"
    provider = {
        "name": "sandbox",
        "issuer": f"{mail.http.base_url}/oidc",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    auth = await stack.start(KLIK_OIDC_PROVIDERS=json.dumps([provider]), KLIK_PUBLIC_URL=public_url)
    unreachable = f"127.0.0.1:{free_port()}"
    settings = GatewaySettings.from_env(
        {
            "KLIK_AUTH_ADDR": f"127.0.0.1:{auth.port}",
            "KLIK_WALLET_ADDR": unreachable,
            "KLIK_CONTENT_ADDR": unreachable,
            "KLIK_GENERATION_ADDR": unreachable,
            "KLIK_NATS_URL": nats_url,
        }
    )
    app = create_app(settings)
    server = GatewayServer(server_config(app, settings, port=gateway_port), app)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started, message="gateway started")
    async with httpx.AsyncClient(base_url=public_url, timeout=15) as client:
        yield OidcStack(auth, client, mail, public_url)
    server.should_exit = True
    await asyncio.wait_for(task, 10)


# ---- the flow -----------------------------------------------------------------------


async def test_a_first_sign_in_creates_a_verified_account_and_the_next_signs_it_in(
    oidc: OidcStack,
) -> None:
    email = "ada@example.com"
    started = await oidc.start(email)
    assert started.status_code == 302
    sent = parse_qs(urlsplit(started.headers["location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and len(sent["code_challenge"][0]) == 43
    assert sent["client_id"] == [CLIENT_ID] and "openid" in sent["scope"][0].split()
    assert sent["state"][0] and sent["nonce"][0] and sent["login_hint"] == [email]
    assert sent["redirect_uri"] == [f"{oidc.public_url}/v1/auth/oidc/sandbox/callback"]

    first = await oidc.sign_in(email)
    tokens = first["tokens"]
    assert "link_required" not in first
    assert tokens["user"]["email"] == email and tokens["user"]["email_verified"] is True
    me = await oidc.gateway.get(
        "/v1/auth/me", headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["id"] == tokens["user"]["id"]
    refreshed = await oidc.gateway.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text

    again = await oidc.sign_in(email)
    assert again["tokens"]["user"]["id"] == tokens["user"]["id"]
    assert await oidc.accounts_with(email) == 1
    async with oidc.auth.uow.read() as session:
        linked = await oidc_store.identities_of(session, tokens["user"]["id"])
    assert linked == [("sandbox", subject_of(email))]
    # A signed-in account has no password anyone knows.
    login = await oidc.gateway.post("/v1/auth/login", json={"email": email, "password": ""})
    error_of(login, 401, "INVALID_CREDENTIALS")


async def test_an_unverified_address_makes_an_unverified_account_and_mails_a_link(
    oidc: OidcStack,
) -> None:
    email = "unproved@example.com"
    answer = await oidc.sign_in(email, verified=False)
    assert answer["tokens"]["user"]["email_verified"] is False
    token = await oidc.idp.token(email, "/verify-email")
    verified = await oidc.gateway.post("/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["email_verified"] is True


async def test_the_one_time_code_works_once(oidc: OidcStack) -> None:
    back = await oidc.gateway.get(await oidc.at_idp("once@example.com"))
    code = app_code(back)
    assert "tokens" in await oidc.exchange(code)
    replay = await oidc.gateway.post("/v1/auth/oidc:exchange", json={"code": code})
    error_of(replay, 400, "OIDC_INVALID_CODE")


# ---- refusals -------------------------------------------------------------------------


async def test_a_forged_state_is_refused(oidc: OidcStack) -> None:
    callback = await oidc.at_idp("forged@example.com")
    query = parse_qs(urlsplit(callback).query)
    forged = await oidc.gateway.get(
        "/v1/auth/oidc/sandbox/callback", params={"code": query["code"][0], "state": "forged"}
    )
    error_of(forged, 400, "OIDC_INVALID_STATE")
    assert await oidc.accounts_with("forged@example.com") == 0


async def test_a_replayed_callback_and_a_replayed_code_are_refused(oidc: OidcStack) -> None:
    email = "replay@example.com"
    callback = await oidc.at_idp(email)
    app_code(await oidc.gateway.get(callback))
    # The same callback again: its state was spent.
    error_of(await oidc.gateway.get(callback), 400, "OIDC_INVALID_STATE")
    # The spent code with the state of a fresh sign-in: the IdP refuses the code.
    fresh = parse_qs(urlsplit(await oidc.at_idp(email)).query)
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    await oidc.idp.http.delete("/_sandbox/requests")
    replayed = await oidc.gateway.get(
        "/v1/auth/oidc/sandbox/callback", params={"code": old_code, "state": fresh["state"][0]}
    )
    error = error_of(replayed, 401, "OIDC_CODE_REJECTED")
    assert error["details"]["error"] == "invalid_grant"
    log = (await oidc.idp.http.get("/_sandbox/requests", params={"path": "/oidc/token"})).json()
    assert [entry["status"] for entry in log["requests"]] == [400]


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        ({"nonce": "not-the-one-sent"}, "nonce"),
        ({"sign_with": "other_key"}, "signature"),
        ({"aud": "someone-else"}, "aud"),
        ({"expires_in": -3600}, "exp"),
    ],
    ids=["wrong-nonce", "other-key", "wrong-aud", "expired"],
)
async def test_a_bad_id_token_is_refused(
    oidc: OidcStack, tamper: dict[str, Any], check: str
) -> None:
    email = f"tampered-{check}@example.com"
    callback = await oidc.at_idp(email)
    await oidc.tamper(**tamper)
    refused = await oidc.gateway.get(callback)
    error = error_of(refused, 401, "OIDC_ID_TOKEN_INVALID")
    assert error["details"]["check"] == check
    assert await oidc.accounts_with(email) == 0
    # The same person, with an honest token, gets in: the refusal was the token's.
    await oidc.idp.http.delete("/_sandbox/oidc/tamper")
    assert "tokens" in await oidc.sign_in(email)


async def test_an_existing_account_is_linked_only_with_its_password(oidc: OidcStack) -> None:
    email = "owner@example.com"
    owner = await oidc.auth.register(email)
    answer = await oidc.sign_in(email)
    assert "tokens" not in answer  # never silently
    link = answer["link_required"]
    assert link["email"] == email and link["provider"] == "sandbox"

    wrong = await oidc.gateway.post(
        "/v1/auth/oidc:link", json={"link_token": link["link_token"], "password": "not it"}
    )
    error_of(wrong, 401, "INVALID_CREDENTIALS")
    linked = await oidc.gateway.post(
        "/v1/auth/oidc:link", json={"link_token": link["link_token"], "password": PASSWORD}
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["user"]["id"] == owner.user.id and linked.json()["access_token"]
    replay = await oidc.gateway.post(
        "/v1/auth/oidc:link", json={"link_token": link["link_token"], "password": PASSWORD}
    )
    error_of(replay, 400, "OIDC_INVALID_LINK_TOKEN")
    # Linked now: the provider signs the account in directly.
    again = await oidc.sign_in(email)
    assert again["tokens"]["user"]["id"] == owner.user.id
    assert await oidc.accounts_with(email) == 1


async def test_start_refuses_unknown_providers_and_foreign_redirects(oidc: OidcStack) -> None:
    unknown = await oidc.gateway.get("/v1/auth/oidc/nowhere/start")
    error_of(unknown, 404, "OIDC_PROVIDER_NOT_FOUND")
    for page in ("https://evil.example/steal", "//evil.example/x", "javascript:alert(1)"):
        refused = await oidc.start("a@example.com", redirect=page)
        error_of(refused, 400, "OIDC_REDIRECT_NOT_ALLOWED")
    same_origin = await oidc.start("a@example.com", redirect=f"{oidc.public_url}/elsewhere")
    assert same_origin.status_code == 302


async def test_a_declined_sign_in_is_the_providers_error(oidc: OidcStack) -> None:
    started = await oidc.start("someone@example.com")
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    declined = await oidc.gateway.get(
        "/v1/auth/oidc/sandbox/callback",
        params={"state": state, "error": "access_denied", "scope": "openid", "authuser": "0"},
    )
    error = error_of(declined, 400, "OIDC_PROVIDER_ERROR")
    assert error["details"]["error"] == "access_denied"


async def test_an_account_with_two_factor_still_gives_its_code_after_a_social_sign_in(
    oidc: OidcStack,
) -> None:
    email = "guarded@example.com"
    tokens = (await oidc.sign_in(email))["tokens"]
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    enrolled = await oidc.gateway.post("/v1/auth/2fa/totp", json={}, headers=bearer)
    assert enrolled.status_code == 200, enrolled.text
    secret = enrolled.json()["secret"]
    confirmed = await oidc.gateway.post(
        "/v1/auth/2fa/totp:confirm", json={"code": totp_code(secret, -1)}, headers=bearer
    )
    assert confirmed.status_code == 200, confirmed.text

    second = (await oidc.sign_in(email))["tokens"]
    assert second["two_factor_required"] is True and second["challenge"]
    assert second.get("access_token", "") == "" and second.get("refresh_token", "") == ""
    done = await oidc.gateway.post(
        "/v1/auth/login/2fa", json={"challenge": second["challenge"], "code": totp_code(secret)}
    )
    assert done.status_code == 200, done.text
    assert done.json()["access_token"] and done.json()["user"]["email"] == email
