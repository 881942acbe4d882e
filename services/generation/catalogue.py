"""Which providers generation can call, the models each offers for which kinds, and
the default provider and model per kind. No I/O: `services.generation.settings` builds
the catalogue from the environment; this module only holds it and answers questions.

A provider is a name (what jobs record and CreateJob names), the HTTP endpoints it
speaks (one per API family: OpenAI-compatible chat completions, Leonardo images,
HeyGen videos) and its models. The sandbox is a provider like the others, named
`sandbox`, with its own models, so a sandbox result never passes for a real one."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from kit.config import ConfigError
from kit.errors import InvalidArgument
from services.generation.domain import Kind

SANDBOX = "sandbox"


class Family(StrEnum):
    """The HTTP shape an endpoint speaks; it decides which adapter calls it."""

    OPENAI = "openai"  # POST /chat/completions
    LEONARDO = "leonardo"  # POST /generations, GET /generations/{id}
    HEYGEN = "heygen"  # POST /v2/video/generate, GET /v1/video_status.get, avatars, voices


FAMILY_OF_KIND: Mapping[Kind, Family] = {
    Kind.TEXT: Family.OPENAI,
    Kind.CHAT: Family.OPENAI,
    Kind.IMAGE: Family.LEONARDO,
    Kind.AVATAR_VIDEO: Family.HEYGEN,
}


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str = field(default="", repr=False)  # "" sends no credentials (sandbox, Ollama)


@dataclass(frozen=True)
class Model:
    id: str
    kinds: tuple[Kind, ...]
    display_name: str = ""
    # TEXT, CHAT: this model's own price; 0 means the kind's default price (pricing).
    credits_per_million_tokens: int = 0
    # The model chosen when a job names this provider but no model, for its kinds.
    default: bool = False
    # TEXT, CHAT: the completion cap sent when a job sets no max_tokens. The hold is
    # estimated from the same cap, so a job can never use more than it holds.
    max_tokens: int = 1024

    def serves(self, kind: Kind) -> bool:
        return kind in self.kinds


@dataclass(frozen=True)
class Provider:
    name: str
    endpoints: Mapping[Family, Endpoint]
    models: tuple[Model, ...]
    sandbox: bool = False

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The kinds some model of this provider serves, in Kind order."""
        return tuple(k for k in Kind if any(m.serves(k) for m in self.models))

    def models_for(self, kind: Kind) -> tuple[Model, ...]:
        return tuple(m for m in self.models if m.serves(kind))

    def default_model(self, kind: Kind) -> Model | None:
        """The model marked default for `kind`, else its first model for `kind`."""
        candidates = self.models_for(kind)
        marked = next((m for m in candidates if m.default), None)
        return marked or (candidates[0] if candidates else None)

    def is_default(self, model: Model) -> bool:
        return any(self.default_model(kind) == model for kind in model.kinds)

    def endpoint(self, family: Family) -> Endpoint:
        return self.endpoints[family]


@dataclass(frozen=True)
class Catalogue:
    providers: tuple[Provider, ...]

    def provider(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)

    def default_provider(self, kind: Kind) -> Provider | None:
        """The first provider (in catalogue order: real ones before the sandbox) that
        serves `kind`."""
        return next((p for p in self.providers if kind in p.kinds), None)

    def resolve(self, kind: Kind, provider: str = "", model: str = "") -> tuple[Provider, Model]:
        """The provider and model a job of `kind` runs on; "" picks the defaults.
        UNKNOWN_PROVIDER / UNKNOWN_MODEL when the request names one that does not
        serve `kind`."""
        chosen = self.provider(provider) if provider else self.default_provider(kind)
        if chosen is None or kind not in chosen.kinds:
            raise InvalidArgument(
                "UNKNOWN_PROVIDER",
                f"no provider {provider!r} serves {kind}"
                if provider
                else f"no provider serves {kind}",
                details={"provider": provider, "kind": kind},
            )
        found = (
            next((m for m in chosen.models_for(kind) if m.id == model), None)
            if model
            else chosen.default_model(kind)
        )
        if found is None:
            raise InvalidArgument(
                "UNKNOWN_MODEL",
                f"provider {chosen.name!r} offers no model {model!r} for {kind}",
                details={"provider": chosen.name, "model": model, "kind": kind},
            )
        return chosen, found

    def text_models(self) -> Iterable[Model]:
        """Every TEXT/CHAT model, once per id (ids may repeat across providers)."""
        seen: set[str] = set()
        for provider in self.providers:
            for model in provider.models:
                if any(k.is_text for k in model.kinds) and model.id not in seen:
                    seen.add(model.id)
                    yield model


# ---- the built-in catalogue ----------------------------------------------------------

OPENAI_URL = "https://api.openai.com/v1"
LEONARDO_URL = "https://cloud.leonardo.ai/api/rest/v1"
HEYGEN_URL = "https://api.heygen.com"

OPENAI_MODELS = (
    Model("gpt-4o-mini", (Kind.TEXT, Kind.CHAT), "GPT-4o mini", 1_000, default=True),
    Model("gpt-4o", (Kind.TEXT, Kind.CHAT), "GPT-4o", 10_000),
)
LEONARDO_MODELS = (
    Model(
        "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3", (Kind.IMAGE,), "Leonardo Phoenix 1.0", default=True
    ),
    Model("b24e16ff-06e3-43eb-8d33-4416c2d75876", (Kind.IMAGE,), "Leonardo Diffusion XL"),
)
# HeyGen's video API has no model parameter; one model names the service.
HEYGEN_MODELS = (Model("heygen-avatar-v2", (Kind.AVATAR_VIDEO,), "HeyGen avatar video"),)
SANDBOX_MODELS = (
    Model("sandbox-text", (Kind.TEXT, Kind.CHAT), "Sandbox text (deterministic, not a model)"),
    Model("sandbox-image", (Kind.IMAGE,), "Sandbox image (a PNG pattern from the prompt)"),
    Model("sandbox-avatar", (Kind.AVATAR_VIDEO,), "Sandbox avatar video (placeholder)"),
)


def sandbox_provider(url: str, kinds: Iterable[Kind]) -> Provider:
    """The sandbox serving `kinds` (those no real provider serves): it speaks every
    family's paths under its own URL."""
    wanted = set(kinds)
    base = url.rstrip("/")
    return Provider(
        SANDBOX,
        {
            Family.OPENAI: Endpoint(base + "/v1"),
            Family.LEONARDO: Endpoint(base + "/api/rest/v1"),
            Family.HEYGEN: Endpoint(base),
        },
        tuple(
            Model(m.id, tuple(k for k in m.kinds if k in wanted), m.display_name)
            for m in SANDBOX_MODELS
            if wanted & set(m.kinds)
        ),
        sandbox=True,
    )


# ---- KLIK_MODELS: replacing a provider's models ---------------------------------------


def parse_models(text: str) -> dict[str, tuple[Model, ...]]:
    """`KLIK_MODELS`: a JSON list of models, each `{"provider", "id", "kinds",
    "display_name"?, "credits_per_million_tokens"?, "default"?, "max_tokens"?}`;
    returns provider name -> its models. ConfigError names what is wrong."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"KLIK_MODELS is not JSON: {error}") from None
    if not isinstance(items, list):
        raise ConfigError("KLIK_MODELS must be a JSON list of models")
    models: dict[str, list[Model]] = {}
    for index, item in enumerate(items):
        where = f"KLIK_MODELS[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be an object")
        provider, model_id, kinds = item.get("provider"), item.get("id"), item.get("kinds")
        if not isinstance(provider, str) or not provider:
            raise ConfigError(f"{where}.provider must be a provider name")
        if not isinstance(model_id, str) or not model_id:
            raise ConfigError(f"{where}.id must be a model id")
        if not isinstance(kinds, list) or not kinds:
            raise ConfigError(f"{where}.kinds must be a non-empty list")
        try:
            parsed = tuple(Kind(k) for k in kinds)
        except ValueError:
            raise ConfigError(f"{where}.kinds: each must be one of {', '.join(Kind)}") from None
        price = item.get("credits_per_million_tokens", 0)
        cap = item.get("max_tokens", 1024)
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            raise ConfigError(f"{where}.credits_per_million_tokens must be an integer >= 0")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ConfigError(f"{where}.max_tokens must be an integer >= 1")
        models.setdefault(provider, []).append(
            Model(
                model_id,
                parsed,
                str(item.get("display_name") or model_id),
                price,
                default=bool(item.get("default", False)),
                max_tokens=cap,
            )
        )
    return {name: tuple(found) for name, found in models.items()}


def check(catalogue: Catalogue) -> Catalogue:
    """Refuse a catalogue a provider could not serve: a model whose kind the
    provider has no endpoint for, or a provider with no models."""
    names = [p.name for p in catalogue.providers]
    if len(set(names)) != len(names):
        raise ConfigError(f"provider names must be unique, got {names}")
    for provider in catalogue.providers:
        if not provider.models:
            raise ConfigError(f"provider {provider.name!r} has no models")
        for model in provider.models:
            for kind in model.kinds:
                if FAMILY_OF_KIND[kind] not in provider.endpoints:
                    raise ConfigError(
                        f"model {model.id!r} of {provider.name!r} serves {kind}, "
                        f"which that provider's API does not offer"
                    )
    return catalogue
