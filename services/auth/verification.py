"""Email verification: the use cases of proving an account owns its address
(VerifyEmail, ResendVerification) and the step Register takes in its own
transaction (`start`).

A verification token is 32 random bytes mailed in a link; the database keeps only
its SHA-256 digest. It works once, for KLIK_EMAIL_VERIFICATION_TTL_SECONDS (24 h),
and only for the address it was mailed to. Verifying publishes `user.email_verified`
once per account and address (the wallet grants the signup bonus on it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from services.auth import domain, events, mail, store
from services.auth.domain import Account
from services.auth.sessions import digest
from services.auth.settings import AuthOptions
from services.auth.store import TokenPurpose

VERIFY_PATH = "/verify-email"  # the web app's page; it POSTs the token to VerifyEmail


def invalid_verification_token() -> InvalidArgument:
    return InvalidArgument(
        "INVALID_VERIFICATION_TOKEN",
        "verification token is unknown, expired, or for an address the account no longer has",
    )


class Verification:
    def __init__(
        self,
        uow: UnitOfWork,
        options: AuthOptions,
        mail_queued: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._options = options
        self._mail_queued = mail_queued
        self._clock = clock

    async def start(self, session: AsyncSession, account: Account, now: datetime) -> None:
        """In the caller's transaction: a new token for the account's address, and the
        mail carrying its link. Call `queued()` once the transaction committed."""
        ttl = self._options.email_verification_seconds
        token = await mail.link_token(session, TokenPurpose.VERIFY_EMAIL, account, ttl, now)
        public_url = self._options.mail.public_url
        message = mail.VERIFY_EMAIL.render(
            account.email,
            name=account.display_name,
            email=account.email,
            link=mail.link(public_url, VERIFY_PATH, token=token),
            hours=str(max(1, round(ttl / 3600))),
        )
        await mail.queue(session, message, now)

    def queued(self) -> None:
        """Mail was committed: wake the sender."""
        self._mail_queued()

    async def verify(self, token: str) -> Account:
        """Mark the address the token was mailed to verified; `user.email_verified`
        the first time. Following the same link again answers the same (the account,
        verified) and publishes nothing."""
        now = self._clock()
        hashed = digest(token)
        async with self._uow.write() as session:
            found = await store.email_token(session, hashed, TokenPurpose.VERIFY_EMAIL)
            if found is None:
                raise invalid_verification_token()
            account = await store.account_by_id(session, found.user_id, for_update=True)
            if account is None or account.email != found.email:
                raise invalid_verification_token()
            if found.used:
                if account.email_verified:
                    return account
                raise invalid_verification_token()
            if found.expires_at <= now:
                raise invalid_verification_token()
            await store.use_email_token(session, hashed, now)
            if await store.mark_email_verified(session, account.id, account.email):
                await events.user_email_verified(session, account.id, account.email)
        return domain.verified(account)

    async def resend(self, user_id: str) -> None:
        """Mail a new link (the older ones keep working until they expire), at most
        once every KLIK_VERIFICATION_RESEND_SECONDS."""
        now = self._clock()
        async with self._uow.write() as session:
            account = await store.account_by_id(session, user_id, for_update=True)
            if account is None:
                raise domain.user_not_found(user_id)
            if account.email_verified:
                raise FailedPrecondition(
                    "EMAIL_ALREADY_VERIFIED", "the account's email address is verified already"
                )
            latest = await store.latest_email_token_at(
                session, account.id, TokenPurpose.VERIFY_EMAIL
            )
            interval = self._options.verification_resend_seconds
            if latest is not None and (now - latest).total_seconds() < interval:
                wait = max(1, math.ceil(interval - (now - latest).total_seconds()))
                raise ResourceExhausted(
                    "TOO_MANY_REQUESTS",
                    f"a verification mail was sent moments ago; try again in {wait} s",
                    retry_after_seconds=wait,
                )
            await self.start(session, account, now)
        self.queued()
