"""gRPC servicers of the generation service: proto ⇄ domain. RPCs not overridden here
answer UNIMPLEMENTED (the generated base class raises NotImplementedError)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc

from kit.server import Resources
from klik.generation.v1 import generation_pb2, generation_pb2_grpc
from services.generation.catalogue import Provider
from services.generation.config import GenerationSettings
from services.generation.domain import Kind
from services.generation.providers.errors import ProviderError
from services.generation.providers.registry import Providers
from services.generation.providers.values import Listing

log = logging.getLogger(__name__)


class GenerationApi(generation_pb2_grpc.GenerationServiceServicer):
    """klik.generation.v1.GenerationService."""

    def __init__(
        self, resources: Resources, settings: GenerationSettings, providers: Providers
    ) -> None:
        self.resources = resources
        self.settings = settings
        self.providers = providers

    async def GetPricing(
        self, request: generation_pb2.GetPricingRequest, context: Any
    ) -> generation_pb2.GetPricingResponse:
        # Public: prices are what anyone sees before signing up.
        return generation_pb2.GetPricingResponse(
            prices=[
                generation_pb2.Price(
                    kind=price.kind,
                    model=price.model,
                    unit=price.unit,
                    credits_per_unit=price.credits_per_unit,
                    minimum_credits=price.minimum_credits,
                )
                for price in self.settings.prices.price_list(self.settings.catalogue)
            ]
        )

    async def ListProviders(
        self, request: generation_pb2.ListProvidersRequest, context: Any
    ) -> generation_pb2.ListProvidersResponse:
        await self.resources.callers.user(context)
        return generation_pb2.ListProvidersResponse(
            providers=[
                await self._provider(provider) for provider in self.settings.catalogue.providers
            ]
        )

    async def _provider(self, provider: Provider) -> generation_pb2.Provider:
        listing = Listing()
        if Kind.AVATAR_VIDEO in provider.kinds:
            try:
                listing = await self.providers.videos(provider.name).listing()
            except ProviderError as error:
                # The catalogue is still worth showing: the circuit state says why
                # the avatars are missing.
                log.warning(
                    "cannot list avatars and voices",
                    extra={"provider": provider.name, "error": error.message},
                )
        prices = self.settings.prices
        return generation_pb2.Provider(
            name=provider.name,
            kinds=list(provider.kinds),
            models=[
                generation_pb2.Model(
                    id=model.id,
                    kinds=list(model.kinds),
                    display_name=model.display_name,
                    credits_per_million_tokens=(
                        prices.tokens_rate(model) if any(k.is_text for k in model.kinds) else 0
                    ),
                    is_default=provider.is_default(model),
                )
                for model in provider.models
            ],
            avatars=[
                generation_pb2.Avatar(id=a.id, name=a.name, preview_url=a.preview_url)
                for a in listing.avatars
            ],
            voices=[
                generation_pb2.Voice(id=v.id, name=v.name, language=v.language)
                for v in listing.voices
            ],
            # Read after the listing: it may just have opened or closed the circuit.
            circuit_state=self.providers.circuit_state(provider.name),
            sandbox=provider.sandbox,
        )


def register(
    server: grpc.aio.Server,
    resources: Resources,
    settings: GenerationSettings | None = None,
    providers: Providers | None = None,
) -> Sequence[str]:
    """Add the servicer. Its provider adapters share one HTTP client, closed when the
    service has drained. Tests pass their own settings (and providers)."""
    settings = settings or GenerationSettings.from_env()
    if providers is None:
        providers = Providers(settings.catalogue, settings.policy)
    resources.on_close(providers.aclose)
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(
        GenerationApi(resources, settings, providers), server
    )
    return (generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name,)
