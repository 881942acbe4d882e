"""Two-factor sign-in with TOTP: the use cases EnrollTotp, ConfirmTotp, DisableTotp
and LoginTwoFactor, and the challenge Login answers for an account with a factor.

Enrolling stores a new secret (sealed with the KEK, kek.py) that does nothing until a
code from it is confirmed; confirming activates it and hands out ten single-use
recovery codes (only their digests are kept). From then on Login answers a
challenge (no tokens) and LoginTwoFactor exchanges it, with a code or a recovery
code, for the session. Disabling needs a code too.

Wrong codes count against the account (`2fa:<user id>`, the login throttle's policy
and table, throttle.py) whichever RPC they come through, so guessing is as slow as
guessing the password. A code is accepted once (totp.accepted_step, last step kept)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import DomainError, FailedPrecondition, InvalidArgument, Unauthenticated
from services.auth import domain, store, totp
from services.auth.domain import Account
from services.auth.kek import Sealer
from services.auth.sessions import Issued, Sessions, digest
from services.auth.settings import AuthOptions
from services.auth.store import Client
from services.auth.throttle import Counter, Throttle

# What a use case does in the transaction that spends an accepted code.
_Then = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into an app
    uri: str  # otpauth://, for a QR code


@dataclass(frozen=True)
class Challenge:
    """What Login answers when the account has two-factor sign-in on."""

    token: str
    expires_in: int
    account: Account


@dataclass(frozen=True)
class Proof:
    """A second factor as given: a TOTP code or a recovery code."""

    code: str = ""
    recovery_code: str = ""


def _already_enabled() -> FailedPrecondition:
    return FailedPrecondition(
        "TWO_FACTOR_ALREADY_ENABLED", "two-factor sign-in is on already; disable it first"
    )


def _not_enrolled() -> FailedPrecondition:
    return FailedPrecondition(
        "TWO_FACTOR_NOT_ENROLLED", "start with EnrollTotp (POST /v1/auth/2fa/totp)"
    )


def _not_enabled() -> FailedPrecondition:
    return FailedPrecondition("TWO_FACTOR_NOT_ENABLED", "two-factor sign-in is not on")


def invalid_challenge() -> Unauthenticated:
    return Unauthenticated(
        "INVALID_CHALLENGE", "the login challenge is unknown, expired or used: log in again"
    )


class TwoFactor:
    def __init__(
        self,
        uow: UnitOfWork,
        sealer: Sealer,
        throttle: Throttle,
        sessions: Sessions,
        options: AuthOptions,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._sealer = sealer
        self._throttle = throttle
        self._sessions = sessions
        self._options = options
        self._clock = clock

    def _counter(self, user_id: str) -> Counter:
        return self._throttle.counter(f"2fa:{user_id}", self._options.account_throttle)

    # ---- enrolment -------------------------------------------------------------------

    async def enrol(self, user_id: str) -> Enrolment:
        """A new pending secret (replacing an earlier pending one)."""
        secret = totp.new_secret()
        now = self._clock()
        async with self._uow.write() as session:
            account = await store.account_by_id(session, user_id, for_update=True)
            if account is None:
                raise domain.user_not_found(user_id)
            found = await store.totp_factor(session, user_id)
            if found is not None and found.active:
                raise _already_enabled()
            sealed = self._sealer.seal(secret.encode(), _context(user_id))
            await store.put_pending_factor(session, user_id, sealed, now)
        return Enrolment(secret, totp.provisioning_uri(secret, account.email))

    async def confirm(self, user_id: str, code: str) -> list[str]:
        """Activate the pending factor with a code from it; the recovery codes."""
        codes = totp.new_recovery_codes()
        await self._prove(
            user_id,
            Proof(code=code),
            pending=True,
            then=lambda session: self._activate(session, user_id, codes),
        )
        return codes

    async def _activate(self, session: AsyncSession, user_id: str, codes: list[str]) -> None:
        await store.confirm_factor(session, user_id, self._clock())
        await store.replace_recovery_codes(
            session, user_id, [totp.recovery_digest(code) for code in codes]
        )

    async def disable(self, user_id: str, proof: Proof) -> None:
        """Turn two-factor sign-in off, given a code (or a recovery code)."""

        async def remove(session: AsyncSession) -> None:
            await store.delete_factor(session, user_id)

        await self._prove(user_id, proof, pending=False, then=remove)

    # ---- login -----------------------------------------------------------------------

    async def required(self, account: Account) -> bool:
        async with self._uow.read() as session:
            return await store.two_factor_active(session, account.id)

    async def challenge(self, account: Account) -> Challenge:
        """A challenge for the second step of the account's login."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        ttl = self._options.two_factor_challenge_seconds
        async with self._uow.write() as session:
            await store.add_login_challenge(
                session, digest(token), account.id, now, now + timedelta(seconds=ttl)
            )
        return Challenge(token, int(ttl), account)

    async def complete(self, challenge: str, proof: Proof, client: Client) -> Issued:
        """LoginTwoFactor: the session, for a live challenge and a right code."""
        hashed = digest(challenge)
        async with self._uow.read() as session:
            user_id = await store.live_login_challenge(session, hashed, self._clock())
        if user_id is None:
            raise invalid_challenge()

        async def spend(session: AsyncSession) -> None:
            if not await store.use_login_challenge(session, hashed, self._clock()):
                raise invalid_challenge()

        account = await self._prove(
            user_id, proof, pending=False, then=spend, wrong=Unauthenticated
        )
        return await self._sessions.start(account, client)

    # ---- shared ----------------------------------------------------------------------

    async def _prove(
        self,
        user_id: str,
        proof: Proof,
        *,
        pending: bool,
        then: _Then,
        wrong: type[DomainError] = InvalidArgument,
    ) -> Account:
        """Check `proof` against the user's factor (pending or active), throttled;
        run `then` in the transaction that spends the code."""
        counter = self._counter(user_id)
        await self._throttle.check([counter])
        async with self._uow.write() as session:
            account = await store.account_by_id(session, user_id)
            found = await store.totp_factor(session, user_id, for_update=True)
            if account is None:
                raise domain.user_not_found(user_id)
            if found is None:
                raise _not_enrolled() if pending else _not_enabled()
            if found.active and pending:
                raise _already_enabled()
            if not found.active and not pending:
                raise _not_enabled()
            accepted = await self._accept(session, found, proof, allow_recovery=not pending)
            if accepted:
                await then(session)
        if not accepted:
            await self._throttle.failed([counter])
            raise wrong("INVALID_TWO_FACTOR_CODE", "the code is wrong, expired or already used")
        await self._throttle.succeeded(counter)
        return account

    async def _accept(
        self,
        session: AsyncSession,
        factor: store.TotpFactor,
        proof: Proof,
        *,
        allow_recovery: bool,
    ) -> bool:
        if proof.recovery_code.strip():
            if not allow_recovery:
                return False
            return await store.use_recovery_code(
                session, factor.user_id, totp.recovery_digest(proof.recovery_code), self._clock()
            )
        secret = self._sealer.open(factor.secret, _context(factor.user_id)).decode()
        step = totp.accepted_step(secret, proof.code, self._clock(), factor.last_step)
        return step is not None and await store.use_totp_step(session, factor.user_id, step)

    async def seal_at_rest(self) -> int:
        """Re-seal every TOTP secret sealed under an older KEK (and check that every
        other one opens: kek.KekError for a wrong KEK). How many were rewritten."""
        rewritten = 0
        async with self._uow.write() as session:
            for user_id, sealed in await store.all_factor_secrets(session):
                secret = self._sealer.open(sealed, _context(user_id))
                if not self._sealer.is_current(sealed):
                    resealed = self._sealer.seal(secret, _context(user_id))
                    await store.set_factor_secret(session, user_id, resealed)
                    rewritten += 1
        return rewritten


def _context(user_id: str) -> str:
    return f"totp_secret:{user_id}"
