"""Password reset: the use cases of getting back into an account whose password is
forgotten (RequestPasswordReset, ConfirmPasswordReset).

A request always answers the same, whether the address has an account or not, and
does the same work either way (the throttle counts, one transaction; the mail is only
queued), so neither the answer nor its time tells which addresses exist. Requests are
throttled per address and per client. The mailed token is 32 random bytes kept as a
SHA-256 digest, single use, KLIK_PASSWORD_RESET_TTL_SECONDS (30 min); using it sets
the password, spends every other reset token of the account, ends every session
family, and mails a notice."""

from __future__ import annotations

from collections.abc import Callable

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import InvalidArgument
from services.auth import domain, mail, store
from services.auth.passwords import Passwords
from services.auth.sessions import digest, end_sessions_of
from services.auth.settings import AuthOptions
from services.auth.store import RevokeReason, TokenPurpose
from services.auth.throttle import Throttle

RESET_PATH = "/reset-password"  # the web app's page; it POSTs token and new password


def invalid_reset_token() -> InvalidArgument:
    return InvalidArgument(
        "INVALID_RESET_TOKEN", "password-reset token is unknown, expired or already used"
    )


class Recovery:
    def __init__(
        self,
        uow: UnitOfWork,
        passwords: Passwords,
        throttle: Throttle,
        options: AuthOptions,
        *,
        common_passwords: frozenset[str],
        mail_queued: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._throttle = throttle
        self._options = options
        self._common = common_passwords
        self._mail_queued = mail_queued
        self._clock = clock

    async def request(self, raw_email: str, address: str) -> None:
        """Mail a reset link if `raw_email` has an account; nothing else differs."""
        email = domain.normalise_email(raw_email)
        counters = [
            self._throttle.counter(f"reset:{email}", self._options.reset_email_throttle),
            self._throttle.counter(
                f"reset-address:{address}", self._options.reset_address_throttle
            ),
        ]
        await self._throttle.check(counters)
        await self._throttle.failed(counters)  # every request counts
        now = self._clock()
        ttl = self._options.password_reset_seconds
        async with self._uow.write() as session:
            account = await store.account_by_email(session, email)
            if account is None:
                return
            token = await mail.link_token(session, _RESET, account, ttl, now)
            message = mail.RESET_PASSWORD.render(
                account.email,
                name=account.display_name,
                email=account.email,
                link=mail.link(self._options.mail.public_url, RESET_PATH, token=token),
                minutes=str(max(1, round(ttl / 60))),
            )
            await mail.queue(session, message, now)
        self._mail_queued()

    async def confirm(self, token: str, new_password: str) -> None:
        """Set the password with a reset token; every session family ends."""
        password = domain.valid_password(new_password, self._common)
        hashed = digest(token)
        async with self._uow.read() as session:  # no costly hash for a bad token
            if not self._usable(await store.email_token(session, hashed, _RESET)):
                raise invalid_reset_token()
        new_hash = await self._passwords.hash(password)
        now = self._clock()
        async with self._uow.write() as session:
            found = await store.email_token(session, hashed, _RESET)
            if found is None or not self._usable(found):
                raise invalid_reset_token()
            account = await store.account_by_id(session, found.user_id, for_update=True)
            if account is None or account.email != found.email:
                raise invalid_reset_token()
            if not await store.use_email_token(session, hashed, now):
                raise invalid_reset_token()
            await store.use_email_tokens_of(session, account.id, _RESET, now)
            await store.replace_password_hash(session, account.id, new_hash)
            await end_sessions_of(session, account.id, now, RevokeReason.PASSWORD_RESET, keep=None)
            await store.clear_failures(session, self._throttle.account(account.email).key)
            notice = mail.PASSWORD_CHANGED.render(
                account.email, name=account.display_name, email=account.email
            )
            await mail.queue(session, notice, now)
        self._mail_queued()

    def _usable(self, found: store.EmailToken | None) -> bool:
        return found is not None and not found.used and found.expires_at > self._clock()


_RESET = TokenPurpose.RESET_PASSWORD
