"""Change of email: the use cases RequestEmailChange and ConfirmEmailChange.

A request proves the password (throttled like Login), mails a link with a
single-use token (32 random bytes, SHA-256 digest at rest,
KLIK_EMAIL_CHANGE_TTL_SECONDS) to the new address and tells the old one. Following
the link switches the account to the new address, which counts as verified (the
link proved it); `user.email_verified` is published for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import InvalidArgument
from services.auth import domain, events, mail, store
from services.auth.accounts import Accounts
from services.auth.domain import Account
from services.auth.sessions import digest
from services.auth.settings import AuthOptions
from services.auth.store import TokenPurpose

CONFIRM_PATH = "/confirm-email"  # the web app's page; it POSTs the token to ConfirmEmailChange
_PURPOSE = TokenPurpose.CHANGE_EMAIL


def invalid_email_change_token() -> InvalidArgument:
    return InvalidArgument(
        "INVALID_EMAIL_CHANGE_TOKEN", "email-change token is unknown, expired or already used"
    )


class EmailChange:
    def __init__(
        self,
        uow: UnitOfWork,
        accounts: Accounts,
        options: AuthOptions,
        mail_queued: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._accounts = accounts
        self._options = options
        self._mail_queued = mail_queued
        self._clock = clock

    async def request(self, user_id: str, new_email: str, password: str) -> None:
        email = domain.valid_email(new_email)
        account = await self._accounts.proved(user_id, password)
        if email == account.email:
            raise InvalidArgument("EMAIL_UNCHANGED", "this is the account's address already")
        now = self._clock()
        ttl = self._options.email_change_seconds
        async with self._uow.write() as session:
            if await store.account_by_email(session, email) is not None:
                raise domain.email_taken()
            token = await mail.link_token(session, _PURPOSE, account, ttl, now, to=email)
            public_url = self._options.mail.public_url
            confirm = mail.CONFIRM_NEW_EMAIL.render(
                email,
                name=account.display_name,
                email=email,
                link=mail.link(public_url, CONFIRM_PATH, token=token),
                hours=str(max(1, round(ttl / 3600))),
            )
            notice = mail.EMAIL_CHANGE_REQUESTED.render(
                account.email, name=account.display_name, email=account.email, new_email=email
            )
            await mail.queue(session, confirm, now)
            await mail.queue(session, notice, now)
        self._mail_queued()

    async def confirm(self, token: str) -> Account:
        """Switch the account to the address the token was mailed to."""
        now = self._clock()
        hashed = digest(token)
        try:
            async with self._uow.write() as session:
                found = await store.email_token(session, hashed, _PURPOSE)
                if found is None or found.used or found.expires_at <= now:
                    raise invalid_email_change_token()
                account = await store.account_by_id(session, found.user_id, for_update=True)
                if account is None:
                    raise invalid_email_change_token()
                if await store.account_by_email(session, found.email) is not None:
                    raise domain.email_taken()
                await store.use_email_token(session, hashed, now)
                await store.use_email_tokens_of(session, account.id, _PURPOSE, now)
                await store.set_email(session, account.id, found.email)
                await events.user_email_verified(session, account.id, found.email)
        except IntegrityError:
            raise domain.email_taken() from None  # taken by a concurrent registration
        return domain.verified(replace(account, email=found.email))
