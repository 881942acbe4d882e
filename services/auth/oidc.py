"""Social sign-in (OpenID Connect): the use cases behind StartOidc, OidcCallback,
ExchangeOidcCode and LinkOidcIdentity (auth.proto says what each answers).

    start     a flow row (state as SHA-256, nonce, PKCE verifier, the app page), and
              the provider's authorization URL
    callback  spends the flow (once), exchanges the code, verifies the ID token
              (oidc_client.py), resolves the identity to an account (known identity:
              that account; else no account with the email: a new account; else the
              account must be proved), and mints a one-time code for the app
    exchange  spends the code: tokens, or a link token when the account must be proved
    link      the account's password, then the identity is linked and a session starts

Every secret value (state, code, link token) is 32 random bytes kept only as its
SHA-256 digest, single use and short-lived (KLIK_OIDC_*_TTL_SECONDS). Provider calls
happen between transactions, never inside one."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.exc import IntegrityError

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import AlreadyExists, DomainError, InvalidArgument, NotFound
from services.auth import domain, events, oidc_store, store
from services.auth.domain import Account
from services.auth.oidc_client import ProviderClient, invalid_id_token, provider_error
from services.auth.oidc_settings import OidcOptions
from services.auth.oidc_store import Flow, Outcome, Ticket, TicketPurpose
from services.auth.passwords import Passwords
from services.auth.sessions import Issued, Sessions, digest
from services.auth.store import Client
from services.auth.throttle import Throttle
from services.auth.two_factor import Challenge, TwoFactor
from services.auth.verification import Verification

CALLBACK_PATH = "/v1/auth/oidc/{provider}/callback"  # the gateway route (auth.proto)
DEFAULT_APP_PATH = "/sign-in/oidc"  # the web app's page that exchanges the code
MAX_APP_STATE = 200
MAX_PARAMETER = 2048
# Flows and tickets this long past their expiry are deleted (by the next start).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class LinkRequired:
    """ExchangeOidcCode's other answer: the account must be proved first."""

    link_token: str
    email: str
    provider: str


@dataclass(frozen=True)
class Callback:
    """The parameters of the provider's redirect back."""

    code: str = ""
    state: str = ""
    error: str = ""
    error_description: str = ""
    iss: str = ""


def invalid_state() -> InvalidArgument:
    return InvalidArgument(
        "OIDC_INVALID_STATE", "the sign-in is unknown, expired or already finished; start again"
    )


def invalid_code() -> InvalidArgument:
    return InvalidArgument("OIDC_INVALID_CODE", "the sign-in code is unknown, expired or used")


def invalid_link_token() -> InvalidArgument:
    return InvalidArgument(
        "OIDC_INVALID_LINK_TOKEN", "the link token is unknown, expired or used; sign in again"
    )


def identity_taken() -> AlreadyExists:
    return AlreadyExists(
        "OIDC_IDENTITY_TAKEN",
        "this identity is linked to an account, or the account has one of this provider",
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def app_redirect(raw: str, public_url: str, origins: frozenset[str]) -> str:
    """Where the callback may send the browser: a path on `public_url`, or an
    absolute http(s) URL of `public_url`'s origin or one of `origins`;
    INVALID_ARGUMENT `OIDC_REDIRECT_NOT_ALLOWED` for anything else (an open redirect
    would hand the one-time code to whoever named the page)."""
    refused = InvalidArgument(
        "OIDC_REDIRECT_NOT_ALLOWED",
        "redirect must be a path of the app or a URL of an allowed origin",
    )
    if not raw:
        return public_url + DEFAULT_APP_PATH
    if len(raw) > MAX_PARAMETER or any(c in raw for c in "\\\r\n\t") or not raw.isprintable():
        raise refused
    if raw.startswith("/") and not raw.startswith("//"):
        return public_url + raw
    parts = urlsplit(raw)
    allowed = {origin_of(public_url), *(o.lower() for o in origins)}
    if parts.scheme not in ("http", "https") or "@" in parts.netloc:
        raise refused
    if origin_of(raw) not in allowed:
        raise refused
    return raw


def with_parameters(url: str, **parameters: str) -> str:
    """`url` with `parameters` added to its query (empty ones left out)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in parameters.items() if value]
    return urlunsplit(parts._replace(query=urlencode(query)))


def email_claims(claims: dict[str, Any]) -> tuple[str, bool]:
    """The address and whether the provider says it is verified (some send "true")."""
    email = claims.get("email")
    verified = claims.get("email_verified")
    return (email if isinstance(email, str) else ""), verified is True or verified == "true"


def display_name_of(claims: dict[str, Any], email: str) -> str:
    for candidate in (claims.get("name"), email.partition("@")[0]):
        if isinstance(candidate, str):
            try:
                return domain.valid_display_name(candidate[: domain.MAX_DISPLAY_NAME_LENGTH])
            except DomainError:
                continue
    return "klik user"


class SocialSignIn:
    def __init__(
        self,
        uow: UnitOfWork,
        options: OidcOptions,
        *,
        public_url: str,
        admin_emails: frozenset[str],
        sessions: Sessions,
        passwords: Passwords,
        throttle: Throttle,
        verification: Verification,
        two_factor: TwoFactor | None = None,
        clients: dict[str, ProviderClient] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        """`two_factor`: an account that has turned it on must give its code after a
        social sign-in too (the identity provider proves the email, not the person
        who set up the second factor here)."""
        self._uow = uow
        self._two_factor = two_factor
        self._options = options
        self._public_url = public_url
        self._admin_emails = admin_emails
        self._sessions = sessions
        self._passwords = passwords
        self._throttle = throttle
        self._verification = verification
        self._clock = clock
        base = options.callback_base or public_url
        self._clients = clients or {
            provider.name: ProviderClient(
                provider,
                base + CALLBACK_PATH.format(provider=provider.name),
                metadata_seconds=options.metadata_seconds,
                timeout_seconds=options.http_timeout_seconds,
            )
            for provider in options.providers
        }

    def client(self, provider: str) -> ProviderClient:
        found = self._clients.get(provider)
        if found is None:
            raise NotFound(
                "OIDC_PROVIDER_NOT_FOUND",
                "no OpenID provider has this name",
                details={"provider": provider[:40]},
            )
        return found

    # ---- StartOidc ------------------------------------------------------------------

    async def start(
        self, provider: str, redirect: str, app_state: str = "", login_hint: str = ""
    ) -> str:
        """The provider's authorization URL for a new flow."""
        client = self.client(provider)
        page = app_redirect(redirect, self._public_url, self._options.redirect_origins)
        if len(app_state) > MAX_APP_STATE or len(login_hint) > 254:
            raise InvalidArgument("INVALID_ARGUMENT", "app_state or login_hint is too long")
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)  # 64 characters: RFC 7636 allows 43..128
        url = await client.authorization_url(state, nonce, verifier, login_hint)
        now = self._clock()
        flow = Flow(
            provider=provider,
            nonce=nonce,
            code_verifier=verifier,
            redirect=page,
            app_state=app_state,
            expires_at=now + timedelta(seconds=self._options.flow_seconds),
            used=False,
        )
        async with self._uow.write() as session:
            await oidc_store.forget_expired(session, now - FORGET_AFTER)
            await oidc_store.insert_flow(session, digest(state), flow, now)
        return url

    # ---- OidcCallback ---------------------------------------------------------------

    async def callback(self, provider: str, given: Callback) -> str:
        """The app page with a one-time code, once the provider's answer checks out."""
        client = self.client(provider)
        if not given.state or len(given.state) > MAX_PARAMETER:
            raise invalid_state()
        now = self._clock()
        async with self._uow.write() as session:
            flow = await oidc_store.spend_flow(session, digest(given.state), now)
        if flow is None or flow.provider != provider or flow.expires_at <= now:
            raise invalid_state()
        if given.error:
            raise provider_error(provider, given.error, given.error_description[:300])
        if not given.code or len(given.code) > MAX_PARAMETER:
            raise invalid_state()
        discovery = await client.discovery()
        if given.iss and given.iss != discovery.issuer:  # RFC 9207: a mixed-up provider
            raise invalid_id_token("iss", "the callback's iss is not this provider's issuer")
        tokens = await client.exchange(given.code, flow.code_verifier)
        claims = await client.verify(tokens.id_token, flow.nonce)
        email, verified = email_claims(claims)
        if not email and tokens.access_token:
            info = await client.userinfo(tokens.access_token)
            if info.get("sub") == claims["sub"]:
                email, verified = email_claims(info)
        try:
            email = domain.valid_email(email)
        except DomainError:
            raise invalid_id_token("email", "the provider gave no usable email address") from None
        subject = str(claims["sub"])
        if len(subject) > 255:
            raise invalid_id_token("sub", "sub is longer than 255 characters")
        user_id, outcome = await self._resolve(provider, subject, email, verified, claims)
        code = secrets.token_urlsafe(32)
        ticket = Ticket(
            purpose=TicketPurpose.EXCHANGE,
            outcome=outcome,
            provider=provider,
            subject=subject,
            email=email,
            user_id=user_id,
            expires_at=now + timedelta(seconds=self._options.code_seconds),
            used=False,
        )
        async with self._uow.write() as session:
            await oidc_store.insert_ticket(session, digest(code), ticket, self._clock())
        return with_parameters(flow.redirect, code=code, state=flow.app_state)

    async def _resolve(
        self, provider: str, subject: str, email: str, verified: bool, claims: dict[str, Any]
    ) -> tuple[str, str]:
        """(account id, Outcome) of the identity: its account, else a new account for
        an unknown email, else the account of that email, to be proved."""
        for _ in range(2):  # once more if a concurrent sign-in created it meanwhile
            async with self._uow.read() as session:
                linked = await oidc_store.identity_user(session, provider, subject)
                existing = await store.account_by_email(session, email)
            if linked is not None:
                return linked, Outcome.SIGNED_IN
            if existing is not None:
                return existing.id, Outcome.LINK_REQUIRED
            try:
                account = await self._create(provider, subject, email, verified, claims)
            except IntegrityError:
                continue
            return account.id, Outcome.SIGNED_IN
        raise identity_taken()

    async def _create(
        self, provider: str, subject: str, email: str, verified: bool, claims: dict[str, Any]
    ) -> Account:
        """A new account for the identity: no usable password (a random one's hash;
        a password reset sets one), verified when the provider says so."""
        unusable = await self._passwords.hash(secrets.token_urlsafe(32))
        admins = self._admin_emails
        now = self._clock()
        account = Account(
            id=str(uuid.uuid4()),
            email=email,
            display_name=display_name_of(claims, email),
            # An address nobody proved must not make anyone an admin.
            role=domain.role_for_new_account(email, admins if verified else frozenset()),
            password_hash=unusable,
            created_at=now,
            email_verified=verified,
        )
        async with self._uow.write() as session:
            await store.insert_account(session, account)
            await oidc_store.insert_identity(session, provider, subject, account.id, email, now)
            await events.user_registered(session, account)
            if verified:
                await events.user_email_verified(session, account.id, email)
            else:
                await self._verification.start(session, account, now)
        if not verified:
            self._verification.queued()
        return account

    # ---- ExchangeOidcCode -----------------------------------------------------------

    async def exchange(self, code: str, client: Client) -> Issued | Challenge | LinkRequired:
        now = self._clock()
        hashed = digest(code)
        async with self._uow.write() as session:
            ticket = await oidc_store.ticket(
                session, hashed, TicketPurpose.EXCHANGE, for_update=True
            )
            if ticket is None or ticket.used or ticket.expires_at <= now:
                raise invalid_code()
            if not await oidc_store.spend_ticket(session, hashed, now):
                raise invalid_code()
            if ticket.outcome == Outcome.LINK_REQUIRED:
                link_token = secrets.token_urlsafe(32)
                link = replace(
                    ticket,
                    purpose=TicketPurpose.LINK,
                    expires_at=now + timedelta(seconds=self._options.code_seconds),
                )
                await oidc_store.insert_ticket(session, digest(link_token), link, now)
                return LinkRequired(link_token, ticket.email, ticket.provider)
            account = await store.account_by_id(session, ticket.user_id)
        if account is None:
            raise domain.user_not_found(ticket.user_id)
        return await self._start(account, client)

    async def _start(self, account: Account, client: Client) -> Issued | Challenge:
        """The session, or the two-factor challenge its account asks for first."""
        if self._two_factor is not None and await self._two_factor.required(account):
            return await self._two_factor.challenge(account)
        return await self._sessions.start(account, client)

    # ---- LinkOidcIdentity -----------------------------------------------------------

    async def link(self, link_token: str, password: str, client: Client) -> Issued | Challenge:
        """Link the identity once the account's password is proved (throttled like a
        login), and start a session."""
        now = self._clock()
        hashed = digest(link_token)
        async with self._uow.read() as session:
            ticket = await oidc_store.ticket(session, hashed, TicketPurpose.LINK)
            account = None if ticket is None else await store.account_by_id(session, ticket.user_id)
        if ticket is None or ticket.used or ticket.expires_at <= now:
            raise invalid_link_token()
        if account is None or account.email != ticket.email:
            raise invalid_link_token()
        counters = [self._throttle.account(account.email), self._throttle.address(client.address)]
        await self._throttle.check(counters)
        if not await self._passwords.verify(
            account.password_hash, domain.normalise_password(password)
        ):
            await self._throttle.failed(counters)
            raise domain.invalid_credentials()
        await self._throttle.succeeded(counters[0])
        try:
            async with self._uow.write() as session:
                if not await oidc_store.spend_ticket(session, hashed, self._clock()):
                    raise invalid_link_token()
                await oidc_store.insert_identity(
                    session, ticket.provider, ticket.subject, account.id, ticket.email, now
                )
        except IntegrityError:
            raise identity_taken() from None
        return await self._start(account, client)
