"""Sessions: refresh-token families and the token pairs they issue.

A login starts a family (one `sessions` row) and hands out its first refresh token:
32 random bytes (256 bits), of which the database keeps only the SHA-256 digest.
Each refresh spends the presented token and issues the next one of the same family;
presenting a spent token means two parties hold copies, so the whole family ends
(`REFRESH_TOKEN_REUSED`). Tokens expire when unused for the idle time and the family
at its absolute expiry, whatever happens (OAuth 2.0 Security BCP 4.14, ASVS V7.3).

The use cases here (start for Login, refresh for Refresh, end for Logout) are each
one transaction of the service's unit of work."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import Clock, utc_now
from kit.config import ServiceSettings
from kit.db import UnitOfWork
from kit.errors import Unauthenticated
from services.auth import domain, store
from services.auth.domain import Account, RefreshToken, Verdict
from services.auth.keys import Keyring, SigningKey, mint_access_token
from services.auth.settings import AuthOptions
from services.auth.store import RevokeReason


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


def invalid_refresh_token() -> Unauthenticated:
    return Unauthenticated(
        "INVALID_REFRESH_TOKEN", "refresh token is unknown, expired or logged out"
    )


class Sessions:
    def __init__(
        self,
        uow: UnitOfWork,
        keyring: Keyring,
        options: AuthOptions,
        settings: ServiceSettings,
        clock: Clock = utc_now,
    ) -> None:
        self._clock = clock
        self._uow = uow
        self._keyring = keyring
        self._options = options
        self._settings = settings

    async def start(self, account: Account) -> Issued:
        """A new family for a login."""
        # The key first: once the session is committed nothing may fail.
        key = await self._keyring.signing_key()
        now = self._clock()
        session_id = str(uuid.uuid4())
        expires_at = now + timedelta(seconds=self._options.refresh_absolute_seconds)
        token = new_refresh_token()
        async with self._uow.write() as session:
            await store.prune_sessions(session, account.id, now)
            await store.create_session(session, session_id, account.id, now, expires_at)
            await self._add_token(session, token, session_id, now, expires_at)
        return self._issue(key, account, session_id, token, now)

    async def refresh(self, refresh_token: str) -> Issued:
        """Spend `refresh_token`, issue the next pair of its family."""
        key = await self._keyring.signing_key()
        now = self._clock()
        token = new_refresh_token()
        try:
            async with self._uow.write() as session:
                verdict, found, account = await self._spend(session, refresh_token, token, now)
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
        return self._issue(key, account, found.session_id, token, now)

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
            await store.revoke_session(session, found.session_id, now, RevokeReason.REUSE)
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
            if found is not None and found.user_id == user_id:
                await store.revoke_session(session, found.session_id, now, RevokeReason.LOGOUT)

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
        self, key: SigningKey, account: Account, session_id: str, token: str, now: datetime
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
        )
        return Issued(access, token, int(ttl), account)
