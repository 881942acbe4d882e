"""The provider adapters of one generation process, built from the catalogue over one
shared `httpx.AsyncClient` (pooled connections), with one circuit breaker per
provider. TEXT/CHAT go to an OpenAI-compatible or an Anthropic adapter, by the
family of the provider's endpoint. The service creates it when it starts and closes
it when it has drained."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kit.errors import InvalidArgument
from services.generation.catalogue import Catalogue, Family
from services.generation.providers import connections
from services.generation.providers.anthropic import Anthropic
from services.generation.providers.breaker import CircuitBreaker, CircuitState
from services.generation.providers.chat import ChatApi
from services.generation.providers.connections import ConnectionGate
from services.generation.providers.errors import ProviderUnavailable
from services.generation.providers.heygen import HeyGen
from services.generation.providers.http import ProviderHttp
from services.generation.providers.leonardo import Leonardo
from services.generation.providers.openai_compat import OpenAICompatible
from services.generation.providers.wakeups import Wakeups
from services.generation.settings import ProviderPolicy

_A = TypeVar("_A")


class Providers:
    def __init__(
        self,
        catalogue: Catalogue,
        policy: ProviderPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """`clock` drives the breakers' cool-downs and the catalogue cache (tests
        inject one); call deadlines are always on time.monotonic(), like the RPC
        deadlines they are compared with."""
        self.client = connections.client(policy.max_connections)
        self.gate = ConnectionGate(policy.max_connections)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.wakeups = Wakeups()  # polls a provider's callback may cut short
        self._text: dict[str, ChatApi] = {}
        self._images: dict[str, Leonardo] = {}
        self._videos: dict[str, HeyGen] = {}
        for provider in catalogue.providers:
            breaker = CircuitBreaker(policy.breaker, clock)
            self.breakers[provider.name] = breaker
            http = ProviderHttp(
                provider.name,
                self.client,
                breaker,
                gate=self.gate,
                retry=policy.retry,
                timeouts=policy.timeouts,
                sleep=sleep,
                rand=rand,
            )
            endpoints = provider.endpoints
            if Family.OPENAI in endpoints:
                self._text[provider.name] = OpenAICompatible(http, endpoints[Family.OPENAI])
            elif Family.ANTHROPIC in endpoints:
                self._text[provider.name] = Anthropic(http, endpoints[Family.ANTHROPIC])
            if Family.LEONARDO in endpoints:
                self._images[provider.name] = Leonardo(
                    http, endpoints[Family.LEONARDO], policy.polling, sleep=sleep
                )
            if Family.HEYGEN in endpoints:
                self._videos[provider.name] = HeyGen(
                    http,
                    endpoints[Family.HEYGEN],
                    policy.polling,
                    listing_ttl_seconds=policy.listing_ttl_seconds,
                    clock=clock,
                    sleep=sleep,
                )

    def text(self, provider: str) -> ChatApi:
        return _get(self._text, provider, "TEXT/CHAT")

    def images(self, provider: str) -> Leonardo:
        return _get(self._images, provider, "IMAGE")

    def videos(self, provider: str) -> HeyGen:
        return _get(self._videos, provider, "AVATAR_VIDEO")

    def circuit_state(self, provider: str) -> CircuitState:
        return self.breakers[provider].state

    def is_open(self, provider: str) -> bool:
        """Whether the provider's circuit refuses calls now (routing skips it)."""
        return self.breakers[provider].state is CircuitState.OPEN

    def check_available(self, provider: str) -> None:
        """Refuse work for a provider whose circuit is open (PROVIDER_UNAVAILABLE),
        without taking the half-open probe: the job's own call will be that probe."""
        if self.is_open(provider):
            raise self.unavailable(provider)

    def unavailable(self, provider: str) -> ProviderUnavailable:
        """The refusal of a provider whose circuit is open."""
        return ProviderUnavailable(
            provider,
            f"{provider} is failing; new jobs are refused for now (circuit open)",
            retry_after_seconds=self.breakers[provider].retry_after(),
        )

    @property
    def closed(self) -> bool:
        return self.client.is_closed

    async def aclose(self) -> None:
        await self.client.aclose()


def _get(adapters: dict[str, _A], provider: str, kinds: str) -> _A:
    try:
        return adapters[provider]
    except KeyError:
        raise InvalidArgument(
            "UNKNOWN_PROVIDER",
            f"no provider {provider!r} serves {kinds}",
            details={"provider": provider},
        ) from None
