"""Password hashing: argon2id (OWASP's first choice) through argon2-cffi.

Hashing costs tens of milliseconds of CPU and `memory_kib` of RAM by design, so it
runs in a thread pool of its own, one thread per CPU (argon2-cffi releases the
GIL), never on the event loop nor in the loop's default executor (which DNS
look-ups and other `to_thread` work share), and at most one hash per CPU runs at
once: more would only queue inside the CPU and multiply the memory held."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.auth.settings import Argon2Parameters

log = logging.getLogger(__name__)

T = TypeVar("T")


class Passwords:
    def __init__(self, parameters: Argon2Parameters, *, concurrency: int | None = None) -> None:
        self.parameters = parameters
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        threads = concurrency or os.cpu_count() or 1
        self._slots = asyncio.Semaphore(threads)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches. With no stored hash (no such account) it checks
        against a dummy hash made with the same parameters, so an unknown email takes
        as long to refuse as a wrong password and does not reveal that it is unknown."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            await self._verify(self._dummy, password)
            return False
        return await self._verify(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    async def _verify(self, stored_hash: str, password: str) -> bool:
        async with self._slots:
            try:
                return await self._run(self._hasher.verify, stored_hash, password)
            except VerifyMismatchError:
                return False
            except (VerificationError, InvalidHashError) as error:
                log.error("stored password hash cannot be verified: %s", error)
                return False

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
