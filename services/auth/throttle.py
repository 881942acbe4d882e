"""Login throttling: counts failed password checks per account and per client
address in the auth database (so every replica sees them) and refuses attempts
with RESOURCE_EXHAUSTED `TOO_MANY_ATTEMPTS` while a delay runs (domain.ThrottlePolicy).

The account is checked first (OWASP: the per-account limit is what stops guessing
one victim's password from many addresses); the address limit, set higher because
many people can share one address, slows one client trying many accounts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import ResourceExhausted
from services.auth import domain, store
from services.auth.domain import ThrottlePolicy


@dataclass(frozen=True)
class Counter:
    """One throttled subject: `account:<email>` or `address:<ip>`, with its policy."""

    key: str
    policy: ThrottlePolicy


class Throttle:
    """The throttling use cases, each one transaction of `uow`."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        account: ThrottlePolicy,
        address: ThrottlePolicy,
        clock: Clock = utc_now,
    ):
        self._uow = uow
        self._clock = clock
        self._account = account
        self._address = address

    def account(self, email: str) -> Counter:
        return Counter(f"account:{email}", self._account)

    def address(self, address: str) -> Counter:
        return Counter(f"address:{address}", self._address)

    @staticmethod
    def counter(key: str, policy: ThrottlePolicy) -> Counter:
        """Any other throttled subject (password-reset requests count per address and
        per client)."""
        return Counter(key, policy)

    async def check(self, counters: Sequence[Counter]) -> None:
        """Raise TOO_MANY_ATTEMPTS (with the delay) when any counter is in a delay."""
        now = self._clock()
        async with self._uow.read() as session:
            counts = await store.failures(session, [counter.key for counter in counters])
        waits = [
            wait
            for counter in counters
            if (wait := domain.retry_after(counts.get(counter.key), now, counter.policy))
        ]
        if waits:
            delay = max(waits)
            raise ResourceExhausted(
                "TOO_MANY_ATTEMPTS",
                f"too many failed attempts; try again in {delay} s",
                retry_after_seconds=delay,
            )

    async def failed(self, counters: Sequence[Counter]) -> None:
        """Count one more failure on every counter."""
        now = self._clock()
        async with self._uow.write() as session:
            # Row locks in key order, so two failures counting the same keys never
            # wait on each other crosswise.
            for counter in sorted(counters, key=lambda c: c.key):
                current = await store.lock_failures(session, counter.key, now)
                await store.set_failures(
                    session, counter.key, domain.after_failure(current, now, counter.policy)
                )

    async def succeeded(self, counter: Counter) -> None:
        """A correct password resets its account's count (not its address's: one
        account an attacker controls must not reset their address)."""
        now = self._clock()
        oldest = max(self._account.window, self._address.window)
        async with self._uow.write() as session:
            await store.clear_failures(session, counter.key)
            # Counts past every window are worth nothing; keep the table small.
            await store.prune_failures(session, now - timedelta(seconds=oldest))
