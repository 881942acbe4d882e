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
4xx included, shows it is up. Waiting too long for one of this replica's own pooled
connections (httpx.PoolTimeout) is retried like a failure to connect, but is no
verdict on the provider.

`stream` is the same for a reply streamed as server-sent events (repeatable), up to
its first item: until then every failure, a stall or a cut in the body included, is
an attempt that may be retried. Once an item has been handed over nothing is
retried: a break fails with StreamInterrupted (counted by the breaker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx

from kit.backoff import RetryPolicy, parse_retry_after, retry_delay
from kit.context import deadline_var
from services.generation.providers.breaker import CircuitBreaker, CircuitState, Permit
from services.generation.providers.connections import ConnectionGate
from services.generation.providers.errors import (
    Malformed,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    StreamInterrupted,
)
from services.generation.providers.sse import Event, events

T = TypeVar("T")
log = logging.getLogger(__name__)

# Statuses after which a request that starts a job was surely not acted on.
_NOT_ACTED = frozenset({429, 503})
# Error messages quoted from a provider are cut to this length.
_QUOTE = 200
# What a body that is not what the API documents raises while it is parsed.
_MALFORMED = (Malformed, ValueError, KeyError, TypeError, IndexError, AttributeError)


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
        gate: ConnectionGate,
        retry: RetryPolicy,
        timeouts: Timeouts,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.provider = provider
        self.client = client
        self.gate = gate  # in front of `client`'s pool: see providers/connections.py
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
            permit, limits = self._permit(deadline)
            outcome = await self._attempt(
                permit, method, url, parse, headers, json, params, repeatable, limits
            )
            if not isinstance(outcome, _Failed):
                return outcome
            await self._before_retry(outcome, attempts, deadline, url)

    async def stream(
        self,
        method: str,
        url: str,
        *,
        decode: Callable[[AsyncIterator[Event]], AsyncGenerator[T, None]],
        size: Callable[[T], int],
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[T, None]:
        """Send the request and yield what `decode` makes of the response's
        server-sent events, each as it arrives. `decode` raises Malformed (or
        KeyError/TypeError/ValueError) for events of the wrong shape or a stream
        that ends too soon, and ProviderError for what the provider refuses in them.
        `size` measures an item for StreamInterrupted's message ("after N
        characters"). Each wait for the provider's bytes is bounded by the read
        timeout, and the whole stream by `deadline` and the RPC's deadline.

        Until the first item: retried and raising as `call(repeatable=True)`. After
        it: StreamInterrupted for a dropped connection, a stall, a malformed event or
        an early end; a ProviderError from `decode` as it is. Closing the generator
        (or cancelling its consumer) closes the response at once."""
        deadline = _earliest(deadline, deadline_var.get())
        attempts = 0
        while True:
            attempts += 1
            permit, limits = self._permit(deadline)
            opened = await self._open(permit, method, url, headers, json, limits, decode, deadline)
            if not isinstance(opened, _Failed):
                break
            await self._before_retry(opened, attempts, deadline, url)
        name, item, settled, arrived = self.provider, opened.first, False, 0
        items = opened.items
        assert items is not None
        try:
            while True:
                yield item
                arrived += size(item)
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    settled = True
                    self.breaker.succeeded(permit)
                    return
                except ProviderError:
                    settled = True
                    self.breaker.succeeded(permit)  # it answered, refusing in the stream
                    raise
                except (TimeoutError, httpx.HTTPError, *_MALFORMED) as error:
                    settled = True
                    self.breaker.failed(permit)
                    why = _brief(error)
                    if isinstance(error, TimeoutError):
                        late = deadline is not None and time.monotonic() >= deadline
                        why = "the deadline passed" if late else "it stalled past the read timeout"
                    raise StreamInterrupted(
                        name, f"{name}: the stream broke after {arrived} characters: {why}"
                    ) from None
        finally:
            if not settled:
                self.breaker.abandoned(permit)  # the consumer left: no verdict
            await opened.close()

    def _permit(self, deadline: float | None) -> tuple[Permit, httpx.Timeout]:
        """The breaker's permit for one attempt and its time limits; raises when the
        circuit is open or the deadline has passed."""
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
        return permit, limits

    async def _before_retry(
        self, outcome: _Failed, attempts: int, deadline: float | None, url: str
    ) -> None:
        """Wait out the backoff before the next attempt, or raise the failure when
        there is to be none."""
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
        try:
            await self.gate.enter(limits.pool)
            try:
                response = await self.client.request(
                    method, url, headers=headers, json=json, params=params, timeout=limits
                )
            finally:
                self.gate.leave()
        except httpx.RequestError as error:
            self._blame(permit, error)
            return self._unreachable(error, repeatable)
        except BaseException:
            # Cancelled (or a bug): no verdict on the provider, but the permit (maybe
            # the half-open probe) must not stay taken.
            self.breaker.abandoned(permit)
            raise
        failed = self._status(permit, response, repeatable)
        if failed is not None:
            return failed
        try:
            result = parse(response.json())
        except ProviderError:
            self.breaker.succeeded(permit)  # it answered, refusing in a 2xx body
            raise
        except _MALFORMED as error:
            self.breaker.failed(permit)
            # Not retried: a start request may have started the job all the same.
            raise self._malformed(response, error) from None
        except BaseException:
            self.breaker.abandoned(permit)
            raise
        self.breaker.succeeded(permit)
        return result

    async def _open(
        self,
        permit: Permit,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        json: Any,
        limits: httpx.Timeout,
        decode: Callable[[AsyncIterator[Event]], AsyncGenerator[T, None]],
        deadline: float | None,
    ) -> _Opened[T] | _Failed:
        """One attempt at a stream, up to its first item: the open stream, or what
        failed (retryable as a repeatable call). Reports failures to the breaker;
        the stream's verdict comes when it ends."""
        name = self.provider
        request = self.client.build_request(method, url, headers=headers, json=json, timeout=limits)
        opened: _Opened[T] | None = None
        try:
            await self.gate.enter(limits.pool)
            try:
                response = await self.client.send(request, stream=True)
            except BaseException:
                self.gate.leave()
                raise
            opened = _Opened(response, self.gate)  # leaves the gate when closed
            if response.status_code >= 400:
                await response.aread()
                failed = self._status(permit, response, True)
                assert failed is not None, "an error status fails or raises"
                await opened.close()
                return failed
            kind = response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                raise Malformed(f"not an event stream ({kind or 'no content-type'})")
            opened.items = decode(events(response, lambda: self._read_limit(deadline)))
            opened.first = await anext(opened.items)
            return opened
        except TimeoutError:
            self.breaker.failed(permit)
            await _close(opened)
            stalled = ProviderTimeout(name, f"{name}: the stream stalled before it began")
            return _Failed(stalled, True)
        except httpx.RequestError as error:
            self._blame(permit, error)
            await _close(opened)
            return self._unreachable(error, True)
        except ProviderError:
            self.breaker.succeeded(permit)  # it answered, refusing in the stream
            await _close(opened)
            raise
        except (*_MALFORMED, StopAsyncIteration) as error:
            self.breaker.failed(permit)
            await _close(opened)
            assert opened is not None
            raise self._malformed(opened.response, error) from None
        except BaseException:
            self.breaker.abandoned(permit)
            await _close(opened)
            raise

    def _blame(self, permit: Permit, error: httpx.RequestError) -> None:
        """Tell the breaker of a request that got no answer, unless it never left
        this process: a PoolTimeout is this replica's own connections all busy (a
        thousand media jobs polling at once), which says nothing of the provider's
        health, and counting it would open the circuit on a healthy provider."""
        if isinstance(error, httpx.PoolTimeout):
            self.breaker.abandoned(permit)
        else:
            self.breaker.failed(permit)

    def _unreachable(self, error: httpx.RequestError, repeatable: bool) -> _Failed:
        """A request that got no (complete) answer: may it be retried?"""
        name = self.provider
        if isinstance(error, httpx.TimeoutException):
            never_sent = isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout)
            return _Failed(
                ProviderTimeout(name, f"{name}: no answer in time ({type(error).__name__})"),
                repeatable or never_sent,
            )
        return _Failed(
            ProviderError(name, f"{name}: cannot reach it ({type(error).__name__})"),
            repeatable or isinstance(error, httpx.ConnectError),
        )

    def _status(self, permit: Permit, response: httpx.Response, repeatable: bool) -> _Failed | None:
        """None for a 2xx or 3xx; a failure (told to the breaker) for 429 and 5xx;
        raises ProviderError for any other refusal. The body must have been read."""
        name, status = self.provider, response.status_code
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
        return None

    def _malformed(self, response: httpx.Response, error: BaseException) -> ProviderError:
        name = self.provider
        return ProviderError(
            name, f"{name} sent a malformed response ({response.status_code}): {_brief(error)}"
        )

    def _read_limit(self, deadline: float | None) -> float:
        """How long a stream may wait for its next bytes: the read timeout, or less
        when the deadline comes first."""
        if deadline is None:
            return self.timeouts.read
        return min(self.timeouts.read, deadline - time.monotonic())

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


class _Opened(Generic[T]):
    """A stream that has started: its response, the decoded items and the first."""

    def __init__(self, response: httpx.Response, gate: ConnectionGate) -> None:
        self.response = response
        self.items: AsyncGenerator[T, None] | None = None
        self.first: T
        self._gate: ConnectionGate | None = gate

    async def close(self) -> None:
        """Stop decoding and close the response (the connection with it, when the
        body has not ended): the provider sees the client go. Gives the gate's slot
        back, once."""
        try:
            if self.items is not None:
                with contextlib.suppress(Exception):
                    await self.items.aclose()
        finally:
            try:
                await self.response.aclose()
            finally:
                if self._gate is not None:
                    self._gate.leave()
                    self._gate = None


async def _close(opened: _Opened[Any] | None) -> None:
    if opened is not None:
        await opened.close()


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


def _brief(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:_QUOTE]
