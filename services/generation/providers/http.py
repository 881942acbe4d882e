"""One provider's HTTP calls, made safe: a timeout on every call, bounded retries
with exponential backoff and full jitter (honouring `Retry-After`), and the
provider's circuit breaker in front of every attempt.

What is retried depends on whether repeating the request is safe:

- `repeatable` requests (polls, catalogue reads, chat completions — a repeated
  completion costs the provider again but creates nothing that lives on): 429, any
  5xx, timeouts and transport errors;
- requests that start a paid job on the provider's side: only when the provider
  cannot have acted on it — 429, 503, and failures to connect. A 500, a read timeout
  or a dropped connection may mean the job was started; retrying could start and
  pay for a second one, so the call fails instead (the job fails, its hold is
  released, nothing is charged).

The breaker counts failures that say the provider is unwell (429, 5xx, timeouts,
transport errors, bodies that are not what its API documents); any other answer,
4xx included, shows it is up."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from kit.backoff import RetryPolicy, parse_retry_after, retry_delay
from kit.context import deadline_var
from services.generation.providers.breaker import CircuitBreaker, CircuitState, Permit
from services.generation.providers.errors import (
    Malformed,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

# Statuses after which a request that starts a job was surely not acted on.
_NOT_ACTED = frozenset({429, 503})
# Error messages quoted from a provider are cut to this length.
_QUOTE = 200


@dataclass(frozen=True)
class Timeouts:
    """Per HTTP call. `read` bounds each wait for the provider's bytes, so a provider
    that never answers fails the call instead of holding the worker."""

    connect: float = 5.0
    read: float = 60.0
    write: float = 10.0
    pool: float = 5.0


class ProviderHttp:
    def __init__(
        self,
        provider: str,
        client: httpx.AsyncClient,
        breaker: CircuitBreaker,
        *,
        retry: RetryPolicy,
        timeouts: Timeouts,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.provider = provider
        self.client = client
        self.breaker = breaker
        self.retry = retry
        self.timeouts = timeouts
        self._sleep = sleep
        self._rand = rand

    async def call(
        self,
        method: str,
        url: str,
        *,
        parse: Callable[[Any], T],
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        repeatable: bool,
        deadline: float | None = None,
    ) -> T:
        """Send the request (retrying as above) and return `parse(body as JSON)`.
        `parse` raises `Malformed` (or KeyError/TypeError/ValueError) for a body of
        the wrong shape. `deadline` (time.monotonic()) bounds the whole call with its
        retries; the deadline of the RPC being served bounds it too.

        Raises ProviderUnavailable (circuit open, nothing sent), ProviderTimeout, or
        ProviderError (an error status, a malformed body, or no connection)."""
        deadline = _earliest(deadline, deadline_var.get())
        attempts = 0
        while True:
            attempts += 1
            permit = self.breaker.acquire()
            if permit is None:
                raise ProviderUnavailable(
                    self.provider,
                    f"{self.provider} is failing; calls are paused (circuit open)",
                    retry_after_seconds=self.breaker.retry_after(),
                )
            limits = self._limits(deadline)
            if limits is None:
                self.breaker.abandoned(permit)
                raise ProviderTimeout(self.provider, f"{self.provider}: deadline passed")
            outcome = await self._attempt(
                permit, method, url, parse, headers, json, params, repeatable, limits
            )
            if not isinstance(outcome, _Failed):
                return outcome
            failure = outcome.error
            delay = (
                retry_delay(attempts, outcome.retry_after, self.retry, self._rand)
                if outcome.retryable
                else None
            )
            if delay is None or (deadline is not None and time.monotonic() + delay >= deadline):
                raise failure
            if self.breaker.state is CircuitState.OPEN:
                # This call's failures opened the circuit: a retry would only be
                # refused, hiding what actually went wrong.
                raise failure
            log.warning(
                "provider call failed, retrying",
                extra={
                    "provider": self.provider,
                    "path": httpx.URL(url).path,
                    "attempt": attempts,
                    "error": failure.message,
                    "retry_in": round(delay, 3),
                },
            )
            await self._sleep(delay)

    async def _attempt(
        self,
        permit: Permit,
        method: str,
        url: str,
        parse: Callable[[Any], T],
        headers: Mapping[str, str] | None,
        json: Any,
        params: Mapping[str, str] | None,
        repeatable: bool,
        limits: httpx.Timeout,
    ) -> T | _Failed:
        """One attempt: its result, or what failed and whether it may be retried.
        Reports the outcome to the breaker."""
        name = self.provider
        try:
            response = await self.client.request(
                method, url, headers=headers, json=json, params=params, timeout=limits
            )
        except httpx.TimeoutException as error:
            self.breaker.failed(permit)
            never_sent = isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout)
            return _Failed(
                ProviderTimeout(name, f"{name}: no answer in time ({type(error).__name__})"),
                repeatable or never_sent,
            )
        except httpx.RequestError as error:
            self.breaker.failed(permit)
            return _Failed(
                ProviderError(name, f"{name}: cannot reach it ({type(error).__name__})"),
                repeatable or isinstance(error, httpx.ConnectError),
            )
        except BaseException:
            # Cancelled (or a bug): no verdict on the provider, but the permit (maybe
            # the half-open probe) must not stay taken.
            self.breaker.abandoned(permit)
            raise
        status = response.status_code
        if status == 429 or status >= 500:
            self.breaker.failed(permit)
            retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
            return _Failed(
                ProviderError(
                    name,
                    f"{name} answered {status}: {_quote(response)}",
                    retry_after_seconds=retry_after,
                ),
                repeatable or status in _NOT_ACTED,
                retry_after,
            )
        if status >= 400:
            self.breaker.succeeded(permit)  # it is up; it refused this request
            raise ProviderError(name, f"{name} refused the request ({status}): {_quote(response)}")
        try:
            result = parse(response.json())
        except ProviderError:
            self.breaker.succeeded(permit)  # it answered, refusing in a 2xx body
            raise
        except (Malformed, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            self.breaker.failed(permit)
            # Not retried: a start request may have started the job all the same.
            raise ProviderError(
                name, f"{name} sent a malformed response ({status}): {_brief(error)}"
            ) from None
        except BaseException:
            self.breaker.abandoned(permit)
            raise
        self.breaker.succeeded(permit)
        return result

    def _limits(self, deadline: float | None) -> httpx.Timeout | None:
        t = self.timeouts
        if deadline is None:
            return httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        return httpx.Timeout(
            connect=min(t.connect, remaining),
            read=min(t.read, remaining),
            write=min(t.write, remaining),
            pool=min(t.pool, remaining),
        )


@dataclass(frozen=True)
class _Failed:
    """A failed attempt: why, whether it may be retried, and the Retry-After asked."""

    error: ProviderError
    retryable: bool
    retry_after: float | None = None


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _quote(response: httpx.Response) -> str:
    """The provider's own error message, if its body has one, cut short."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    message: object = body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("code") or error
        elif error:
            message = error
        elif "message" in body:
            message = body["message"]
    text = message if isinstance(message, str) else str(message)
    return text[:_QUOTE]


def _brief(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:_QUOTE]
