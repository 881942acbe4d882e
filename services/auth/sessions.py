"""Sessions: refresh-token families and the token pairs they issue.

A login starts a family (one `sessions` row) and hands out its first refresh token:
32 random bytes (256 bits), of which the database keeps only the SHA-256 digest.
Each refresh spends the presented token and issues the next one of the same family;
presenting a spent token means two parties hold copies, so the whole family ends
(`REFRESH_TOKEN_REUSED`). Tokens expire when unused for the idle time and the family
at its absolute expiry, whatever happens (OAuth 2.0 Security BCP 4.14, ASVS V7.3).

Ending a family early (Logout, RevokeSession, a reused token, and through
`end_sessions_of` a password change or reset) publishes `session.revoked`, so every
service refuses the access tokens issued from it too (kit.revocations).

The use cases here (start for Login, refresh for Refresh, end for Logout, sessions
for ListSessions, revoke for RevokeSession) are each one transaction of the
service's unit of work."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.callers import Callers
from kit.clock import Clock, utc_now
from kit.config import ServiceSettings
from kit.db import UnitOfWork
from kit.errors import Unauthenticated
from kit.server import token_lifetime
from services.auth import domain, events, store
from services.auth.domain import Account, RefreshToken, Verdict
from services.auth.keys import Keyring, SigningKey, mint_access_token
from services.auth.settings import AuthOptions
from services.auth.store import Client, LiveSession, RevokeReason


@dataclass(frozen=True)
class Issued:
    """What Login and Refresh answer."""

    access_token: str
    refresh_token: str
    expires_in: int
    account: Account


def digest(refresh_token: str) -> str:
    """How a refresh token is stored and looked up. A fast hash is right here: the
    token is 256 random bits, nothing to brute-force, unlike a password."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


UNKNOWN_CLIENT = Client()


def invalid_refresh_token() -> Unauthenticated:
    return Unauthenticated(
        "INVALID_REFRESH_TOKEN", "refresh token is unknown, expired or logged out"
    )


async def end_sessions_of(
    session: AsyncSession, user_id: str, now: datetime, reason: str, *, keep: str | None
) -> list[str]:
    """End every live session of the user but `keep`, each with its
    `session.revoked`, in the caller's transaction; their ids."""
    ended = await store.revoke_sessions_of(session, user_id, now, reason, keep=keep)
    await events.sessions_revoked(session, user_id, ended, now)
    return ended


async def _end_session(
    session: AsyncSession,
    user_id: str,
    session_id: str,
    now: datetime,
    reason: str,
    *,
    owner_only: bool = False,
) -> bool:
    """End one session (with `owner_only`, only a live one of `user_id`'s) and
    publish its `session.revoked`; whether this ended it."""
    owner = user_id if owner_only else None
    if not await store.revoke_session(session, session_id, now, reason, user_id=owner):
        return False
    await events.sessions_revoked(session, user_id, [session_id], now)
    return True


class Sessions:
    def __init__(
        self,
        uow: UnitOfWork,
        keyring: Keyring,
        options: AuthOptions,
        settings: ServiceSettings,
        callers: Callers | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._clock = clock
        self._uow = uow
        self._keyring = keyring
        self._options = options
        self._settings = settings
        self._callers = callers

    async def start(self, account: Account, client: Client = UNKNOWN_CLIENT) -> Issued:
        """A new family for a login from `client`."""
        # The key first: once the session is committed nothing may fail.
        key = await self._keyring.signing_key()
        now = self._clock()
        session_id = str(uuid.uuid4())
        expires_at = now + timedelta(seconds=self._options.refresh_absolute_seconds)
        token = new_refresh_token()
        async with self._uow.write() as session:
            await store.prune_sessions(session, account.id, now)
            await store.create_session(session, session_id, account.id, now, expires_at, client)
            await self._add_token(session, token, session_id, now, expires_at)
            await store.record_activity(session, account.id, now)
            missing = await self._two_factor_missing(session, account)
        return self._issue(key, account, session_id, token, now, missing)

    async def refresh(self, refresh_token: str, client: Client = UNKNOWN_CLIENT) -> Issued:
        """Spend `refresh_token`, issue the next pair of its family; the family was
        last used now, by `client`."""
        key = await self._keyring.signing_key()
        now = self._clock()
        token = new_refresh_token()
        try:
            async with self._uow.write() as session:
                verdict, found, account = await self._spend(session, refresh_token, token, now)
                missing = False
                if account is not None and found is not None:
                    await store.touch_session(session, found.session_id, now, client)
                    await store.record_activity(session, account.id, now)
                    missing = await self._two_factor_missing(session, account)
        except IntegrityError:
            # The account was deleted while we spent its token (its family went with it).
            raise invalid_refresh_token() from None
        if verdict is Verdict.REUSED:
            raise Unauthenticated(
                "REFRESH_TOKEN_REUSED",
                "refresh token was already used; the session has been ended",
            )
        if found is None or account is None:
            raise invalid_refresh_token()
        return self._issue(key, account, found.session_id, token, now, missing)

    async def _two_factor_missing(self, session: AsyncSession, account: Account) -> bool:
        """Whether the account's role requires two-factor sign-in it has not turned on
        (KLIK_REQUIRE_2FA_ROLES; the token then carries `tfr`)."""
        if account.role not in self._options.require_2fa_roles:
            return False
        return not await store.two_factor_active(session, account.id)

    async def _spend(
        self, session: AsyncSession, presented: str, successor: str, now: datetime
    ) -> tuple[Verdict, RefreshToken | None, Account | None]:
        """In one transaction: judge the presented token; spend it and add `successor`
        to its family, or end the family on reuse."""
        hashed = digest(presented)
        found = await store.find_refresh_token(session, hashed)
        verdict = domain.judge_refresh(found, now)
        if found is None or verdict is Verdict.INVALID:
            return Verdict.INVALID, found, None
        # Losing the race to a concurrent refresh of the same token is reuse too.
        if verdict is Verdict.ROTATE and not await store.spend_refresh_token(session, hashed, now):
            verdict = Verdict.REUSED
        if verdict is Verdict.REUSED:
            await _end_session(session, found.user_id, found.session_id, now, RevokeReason.REUSE)
            return verdict, found, None
        await self._add_token(session, successor, found.session_id, now, found.session_expires_at)
        idle = timedelta(seconds=self._options.refresh_idle_seconds)
        await store.prune_spent_tokens(session, found.session_id, now - idle)
        return verdict, found, await store.account_by_id(session, found.user_id)

    async def end(self, refresh_token: str, user_id: str) -> None:
        """Logout: end the family of `refresh_token` if it is one of `user_id`'s.
        Anything else changes nothing (so Logout reveals nothing about tokens)."""
        now = self._clock()
        async with self._uow.write() as session:
            found = await store.find_refresh_token(session, digest(refresh_token))
            if found is None or found.user_id != user_id:
                return
            ended = await _end_session(session, user_id, found.session_id, now, RevokeReason.LOGOUT)
        if ended:
            self._revoked_here(found.session_id)

    async def sessions(self, user_id: str) -> list[LiveSession]:
        """The user's live sessions, most recently used first."""
        async with self._uow.read() as session:
            return await store.live_sessions(session, user_id, self._clock())

    async def revoke(self, user_id: str, session_id: str) -> None:
        """RevokeSession: end one of the user's live sessions, or SESSION_NOT_FOUND."""
        now = self._clock()
        async with self._uow.write() as session:
            if not await _end_session(
                session, user_id, session_id, now, RevokeReason.REVOKED, owner_only=True
            ):
                raise domain.session_not_found(session_id)
        self._revoked_here(session_id)

    def _revoked_here(self, session_id: str) -> None:
        """This replica refuses the session's access tokens at once; the others (and
        every other service) when `session.revoked` reaches them."""
        if self._callers is not None:
            self._callers.revoke_session(session_id, for_seconds=token_lifetime(self._settings))

    async def _add_token(
        self,
        session: AsyncSession,
        token: str,
        session_id: str,
        now: datetime,
        session_expires_at: datetime,
    ) -> None:
        expires_at = domain.refresh_expiry(
            now, session_expires_at, self._options.refresh_idle_seconds
        )
        await store.add_refresh_token(session, digest(token), session_id, now, expires_at)

    def _issue(
        self,
        key: SigningKey,
        account: Account,
        session_id: str,
        token: str,
        now: datetime,
        two_factor_missing: bool = False,
    ) -> Issued:
        ttl = self._settings.access_token_ttl_seconds
        access = mint_access_token(
            key,
            issuer=self._settings.token_issuer,
            audience=self._settings.token_audience,
            subject=account.id,
            role=account.role,
            session_id=session_id,
            issued_at=now,
            ttl_seconds=ttl,
            email_verified=account.email_verified,
            two_factor_missing=two_factor_missing,
        )
        return Issued(access, token, int(ttl), account)
