"""Accounts: the use cases of one's own account (Register, Login, GetMe,
ChangePassword, DeleteMe), each transaction one `uow` block.

Password hashing (tens of milliseconds of CPU by design, passwords.py) runs between
transactions, never inside one, so no row or SQLite write lock is held while it runs."""

from __future__ import annotations

import functools
import uuid
from importlib import resources

from sqlalchemy.exc import IntegrityError

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from services.auth import domain, events, store
from services.auth.admin import Admin
from services.auth.domain import Account
from services.auth.passwords import Passwords
from services.auth.sessions import Issued, Sessions, end_sessions_of
from services.auth.store import Client
from services.auth.throttle import Throttle
from services.auth.two_factor import Challenge, TwoFactor
from services.auth.verification import Verification

COMMON_PASSWORDS_FILE = "common_passwords.txt"


@functools.cache
def load_common_passwords() -> frozenset[str]:
    """The most common passwords, refused by the password policy (domain.valid_password),
    case-folded (so `Password1` counts as `password1`).

    `common_passwords.txt` beside this module, one a line: SecLists,
    `Passwords/Common-Credentials/10k-most-common.txt`
    (https://github.com/danielmiessler/SecLists, commit
    4f84b3c29b5f2192cc82ccdeaf655f0c5f0ab547, MIT licence, (c) Daniel Miessler): the
    10,000 most common passwords, most common first, verbatim (only the CRLF line ends
    became LF). Entries shorter than the 8-character minimum are refused by that rule
    first; they are kept so the list stays the published one. Shipped as package data
    (pyproject.toml), so it is there when the package is installed non-editable."""
    text = resources.files(__package__).joinpath(COMMON_PASSWORDS_FILE).read_text("utf-8")
    return frozenset(line.casefold() for line in text.splitlines() if line)


class Accounts:
    def __init__(
        self,
        uow: UnitOfWork,
        passwords: Passwords,
        sessions: Sessions,
        throttle: Throttle,
        verification: Verification,
        admin: Admin,
        *,
        admin_emails: frozenset[str],
        common_passwords: frozenset[str],
        two_factor: TwoFactor | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._two_factor = two_factor
        self._clock = clock
        self._uow = uow
        self._passwords = passwords
        self._sessions = sessions
        self._throttle = throttle
        self._verification = verification
        self._admin = admin
        self._admin_emails = admin_emails
        self._common = common_passwords

    async def register(
        self, email: str, password: str, display_name: str, handle: str = ""
    ) -> Account:
        """A new account (role admin for KLIK_ADMIN_EMAILS, the `handle` if one is
        given), its `user.registered` and the mail with its verification link, all in
        one transaction."""
        email = domain.valid_email(email)
        password = domain.valid_password(password, self._common)
        display_name = domain.valid_display_name(display_name)
        handle = domain.valid_handle(handle)
        if await self._by_email(email) is not None:
            raise domain.email_taken()  # before the costly hash
        if handle and await self._by_handle(handle) is not None:
            raise domain.handle_taken()
        account = Account(
            id=str(uuid.uuid4()),
            email=email,
            display_name=display_name,
            role=domain.role_for_new_account(email, self._admin_emails),
            password_hash=await self._passwords.hash(password),
            created_at=self._clock(),
            handle=handle,
        )
        try:
            async with self._uow.write() as session:
                await store.insert_account(session, account)
                await events.user_registered(session, account)
                await self._verification.start(session, account, account.created_at)
        except IntegrityError:
            # A concurrent registration of the same email (or handle) won the unique
            # index; this transaction, its event and mail included, is rolled back.
            if handle and await self._by_email(email) is None:
                raise domain.handle_taken() from None
            raise domain.email_taken() from None
        self._verification.queued()
        return account

    async def login(self, email: str, password: str, client: Client) -> Issued | Challenge:
        """A new session for the right password, throttled per account and per client
        address (throttle.py); for an account with two-factor sign-in on, a challenge
        for the second step instead (two_factor.py)."""
        email = domain.normalise_email(email)
        counters = [self._throttle.account(email), self._throttle.address(client.address)]
        await self._throttle.check(counters)
        account = await self._by_email(email)
        password = domain.normalise_password(password)
        # Unknown email and wrong password: same error, same work (a dummy hash check).
        if not await self._passwords.verify(account.password_hash if account else None, password):
            await self._throttle.failed(counters)
            raise domain.invalid_credentials()
        assert account is not None
        await self._throttle.succeeded(counters[0])
        if self._passwords.needs_rehash(account.password_hash):
            await self._rehash(account, password)
        if self._two_factor is not None and await self._two_factor.required(account):
            return await self._two_factor.challenge(account)
        return await self._sessions.start(account, client)

    async def account(self, user_id: str) -> Account:
        """The caller's account; USER_NOT_FOUND when it was deleted after the token was
        issued."""
        async with self._uow.read() as session:
            account = await store.account_by_id(session, user_id)
        if account is None:
            raise domain.user_not_found(user_id)
        return account

    async def change_password(
        self, user_id: str, session_id: str, current_password: str, new_password: str
    ) -> None:
        """Replace the password (throttled like Login). The session `session_id` (the
        caller's token came from it) stays; every other session of the user ends."""
        new_password = domain.valid_password(new_password, self._common)
        account = await self.proved(user_id, current_password)
        new_hash = await self._passwords.hash(new_password)
        now = self._clock()
        async with self._uow.write() as session:
            if not await store.replace_password_hash(session, account.id, new_hash):
                raise domain.user_not_found(account.id)
            await end_sessions_of(
                session,
                account.id,
                now,
                store.RevokeReason.PASSWORD_CHANGED,
                keep=session_id or None,
            )

    async def delete_me(self, user_id: str, password: str) -> None:
        """DeleteMe: the admin's deletion of the account (admin.py: `user.deleted`,
        last-admin protection), once its password is proved (throttled like Login)."""
        await self.proved(user_id, password)
        await self._admin.delete_user(user_id)

    async def proved(self, user_id: str, password: str) -> Account:
        """The caller's account once `password` is its password; INVALID_CREDENTIALS
        otherwise, counted against the account like a failed login."""
        account = await self.account(user_id)
        counter = self._throttle.account(account.email)
        await self._throttle.check([counter])
        if not await self._passwords.verify(
            account.password_hash, domain.normalise_password(password)
        ):
            await self._throttle.failed([counter])
            raise domain.invalid_credentials()
        await self._throttle.succeeded(counter)
        return account

    async def _by_handle(self, handle: str) -> Account | None:
        async with self._uow.read() as session:
            return await store.account_by_handle(session, handle)

    async def _by_email(self, email: str) -> Account | None:
        async with self._uow.read() as session:
            return await store.account_by_email(session, email)

    async def _rehash(self, account: Account, password: str) -> None:
        """Store the password's hash under the current parameters (they changed since
        it was hashed: OWASP recommends upgrading on the next successful login)."""
        new_hash = await self._passwords.hash(password)
        async with self._uow.write() as session:
            await store.replace_password_hash(
                session, account.id, new_hash, old_hash=account.password_hash
            )
