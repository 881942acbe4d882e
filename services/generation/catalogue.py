"""Which providers generation can call, the models each offers for which kinds, and
the default provider and model per kind. No I/O: `services.generation.settings` builds
the catalogue from the environment; this module only holds it and answers questions.

A provider is a name (what jobs record and CreateJob names), the HTTP endpoints it
speaks (one per API family: OpenAI-compatible chat completions, Anthropic's Messages
API, Leonardo images, HeyGen videos) and its models. The sandbox is a provider like
the others, named `sandbox` (and `sandbox-anthropic` for its Messages API), with its
own models, so a sandbox result never passes for a real one.

An alias names an ordered list of TEXT/CHAT models on several providers
(`provider/model`): a job created with it runs on the first that can serve it
(`route`; the runner skips a provider whose circuit is open or that fails before its
first token)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kit.config import ConfigError
from kit.errors import InvalidArgument, PermissionDenied
from services.generation.domain import Kind

SANDBOX = "sandbox"
# The sandbox's Anthropic-shaped endpoint, a TEXT/CHAT provider of its own.
SANDBOX_ANTHROPIC = "sandbox-anthropic"
# The alias over both when the sandbox serves TEXT/CHAT and KLIK_LLM_ALIASES is unset.
SANDBOX_ALIAS = "default-chat"


class Family(StrEnum):
    """The HTTP shape an endpoint speaks; it decides which adapter calls it."""

    OPENAI = "openai"  # POST /chat/completions
    ANTHROPIC = "anthropic"  # POST /messages
    LEONARDO = "leonardo"  # POST /generations, GET /generations/{id}
    HEYGEN = "heygen"  # POST /v2/video/generate, GET /v1/video_status.get, avatars, voices


# The families that can serve each kind.
FAMILIES_OF_KIND: Mapping[Kind, tuple[Family, ...]] = {
    Kind.TEXT: (Family.OPENAI, Family.ANTHROPIC),
    Kind.CHAT: (Family.OPENAI, Family.ANTHROPIC),
    Kind.IMAGE: (Family.LEONARDO,),
    Kind.AVATAR_VIDEO: (Family.HEYGEN,),
    Kind.IMAGE_TO_VIDEO: (Family.LEONARDO,),  # Motion (SVD)
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
    # Served only to callers whose role unlocks premium models (PREMIUM_ROLES).
    premium: bool = False

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
class Alias:
    """A model name that stands for `targets`, (provider, model id) pairs in the order
    they are tried."""

    name: str
    targets: tuple[tuple[str, str], ...]

    @property
    def spelled(self) -> tuple[str, ...]:
        """The targets as configured: `provider/model`."""
        return tuple(f"{provider}/{model}" for provider, model in self.targets)


@dataclass(frozen=True)
class Route:
    """Where a job may run: `candidates` in order; `alias` the alias it was asked
    for ("" when the request named one provider and model)."""

    alias: str
    candidates: tuple[tuple[Provider, Model], ...]


@dataclass(frozen=True)
class Catalogue:
    providers: tuple[Provider, ...]
    aliases: tuple[Alias, ...] = ()

    def provider(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)

    def alias(self, name: str) -> Alias | None:
        return next((a for a in self.aliases if a.name == name), None)

    def route(self, kind: Kind, provider: str = "", model: str = "", alias: str = "") -> Route:
        """Where a job of `kind` may run. A `model` that names an alias (with
        `provider` "" or the alias itself), or `alias` given (a stored job's), routes
        over the alias's targets that serve `kind`; anything else is `resolve`."""
        found = self.alias(alias or model) if alias or provider in ("", model) else None
        if found is None:
            return Route("", (self.resolve(kind, provider, model),))
        candidates = []
        for name, model_id in found.targets:
            target = self.provider(name)
            models = target.models_for(kind) if target is not None else ()
            chosen = next((m for m in models if m.id == model_id), None)
            if target is not None and chosen is not None:
                candidates.append((target, chosen))
        if not candidates:
            raise InvalidArgument(
                "UNKNOWN_MODEL",
                f"alias {found.name!r} has no model for {kind}",
                details={"provider": provider, "model": found.name, "kind": kind},
            )
        return Route(found.name, tuple(candidates))

    def alias_kinds(self, alias: Alias) -> tuple[Kind, ...]:
        """The kinds some target of `alias` serves, in Kind order."""
        models = [self.resolve_target(target) for target in alias.targets]
        return tuple(k for k in Kind if any(m.serves(k) for _, m in models))

    def resolve_target(self, target: tuple[str, str]) -> tuple[Provider, Model]:
        name, model_id = target
        provider = self.provider(name)
        model = next((m for m in provider.models if m.id == model_id), None) if provider else None
        if provider is None or model is None:
            raise ConfigError(f"no model {model_id!r} on a provider {name!r}")
        return provider, model

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


# The roles whose callers may use premium-only models.
PREMIUM_ROLES = ("premium", "moderator", "admin")


def require_premium(route: Route, premium: bool) -> Route:
    """`route` if the caller may use every model on it; PREMIUM_REQUIRED when one
    of them is premium-only and the caller's role does not unlock them (an alias
    with a premium-only model among its fallbacks is premium-only as a whole, so
    no fallback ever serves a premium model to a caller without the role)."""
    locked = [model.id for _, model in route.candidates if model.premium]
    if locked and not premium:
        raise PermissionDenied(
            "PREMIUM_REQUIRED",
            "this model is for premium subscribers: subscribe to a premium plan, "
            "then refresh your access token",
            details={"model": route.alias or locked[0]},
        )
    return route


# ---- the built-in catalogue ----------------------------------------------------------

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com/v1"
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
    Model("motion-svd", (Kind.IMAGE_TO_VIDEO,), "Leonardo Motion (an image into a 4 s clip)"),
)
# HeyGen's video API has no model parameter; one model names the service.
HEYGEN_MODELS = (Model("heygen-avatar-v2", (Kind.AVATAR_VIDEO,), "HeyGen avatar video"),)
SANDBOX_MODELS = (
    Model("sandbox-text", (Kind.TEXT, Kind.CHAT), "Sandbox text (deterministic, not a model)"),
    Model("sandbox-image", (Kind.IMAGE,), "Sandbox image (a PNG pattern from the prompt)"),
    Model("sandbox-avatar", (Kind.AVATAR_VIDEO,), "Sandbox avatar video (placeholder)"),
    Model("sandbox-motion", (Kind.IMAGE_TO_VIDEO,), "Sandbox motion clip (placeholder)"),
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


def sandbox_anthropic(url: str) -> Provider:
    """The sandbox's Messages API as a provider: its text model, the same replies."""
    text = SANDBOX_MODELS[0]
    return Provider(
        SANDBOX_ANTHROPIC,
        {Family.ANTHROPIC: Endpoint(url.rstrip("/") + "/v1")},
        (Model(text.id, text.kinds, "Sandbox text on the Messages API (not a model)"),),
        sandbox=True,
    )


SANDBOX_ALIAS_TARGETS = ((SANDBOX, "sandbox-text"), (SANDBOX_ANTHROPIC, "sandbox-text"))


# ---- KLIK_MODELS: replacing a provider's models ---------------------------------------


def parse_models(text: str) -> dict[str, tuple[Model, ...]]:
    """`KLIK_MODELS`: a JSON list of models, each `{"provider", "id", "kinds",
    "display_name"?, "credits_per_million_tokens"?, "default"?, "max_tokens"?,
    "premium"?}`; returns provider name -> its models. ConfigError names what is wrong."""
    items = _json("KLIK_MODELS", text)
    if not isinstance(items, list):
        raise ConfigError("KLIK_MODELS must be a JSON list of models")
    models: dict[str, list[Model]] = {}
    for index, item in enumerate(items):
        where = f"KLIK_MODELS[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be an object")
        provider = item.get("provider")
        if not isinstance(provider, str) or not provider:
            raise ConfigError(f"{where}.provider must be a provider name")
        models.setdefault(provider, []).append(parse_model(item, where))
    return {name: tuple(found) for name, found in models.items()}


def parse_model(item: Any, where: str, kinds: tuple[Kind, ...] = ()) -> Model:
    """One model: `{"id", "kinds", "display_name"?, "credits_per_million_tokens"?,
    "default"?, "max_tokens"?}`; `kinds` may be left out when `kinds` gives them."""
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be an object")
    model_id, listed = item.get("id"), item.get("kinds", list(kinds) or None)
    if not isinstance(model_id, str) or not model_id:
        raise ConfigError(f"{where}.id must be a model id")
    if not isinstance(listed, list) or not listed:
        raise ConfigError(f"{where}.kinds must be a non-empty list")
    try:
        parsed = tuple(Kind(k) for k in listed)
    except ValueError:
        raise ConfigError(f"{where}.kinds: each must be one of {', '.join(Kind)}") from None
    price = item.get("credits_per_million_tokens", 0)
    cap = item.get("max_tokens", 1024)
    premium = item.get("premium", False)
    if not isinstance(premium, bool):
        raise ConfigError(f"{where}.premium must be true or false")
    if not isinstance(price, int) or isinstance(price, bool) or price < 0:
        raise ConfigError(f"{where}.credits_per_million_tokens must be an integer >= 0")
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        raise ConfigError(f"{where}.max_tokens must be an integer >= 1")
    return Model(
        model_id,
        parsed,
        str(item.get("display_name") or model_id),
        price,
        default=bool(item.get("default", False)),
        max_tokens=cap,
        premium=premium,
    )


def _json(variable: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{variable} is not JSON: {error}") from None


# ---- KLIK_LLM_PROVIDERS and KLIK_LLM_ALIASES --------------------------------------------

LLM_TYPES: Mapping[str, tuple[Family, str]] = {
    "openai": (Family.OPENAI, OPENAI_URL),  # any OpenAI-compatible server
    "anthropic": (Family.ANTHROPIC, ANTHROPIC_URL),
}
TEXT_KINDS = (Kind.TEXT, Kind.CHAT)


def parse_llm_providers(text: str) -> list[Provider]:
    """`KLIK_LLM_PROVIDERS`: a JSON list of `{"name", "type": "openai" | "anthropic",
    "base_url"?, "api_key"?, "models": [id | model object]}` (a model object as in
    KLIK_MODELS, `kinds` defaulting to TEXT and CHAT). ConfigError names what is wrong."""
    items = _json("KLIK_LLM_PROVIDERS", text)
    if not isinstance(items, list):
        raise ConfigError("KLIK_LLM_PROVIDERS must be a JSON list of providers")
    providers = []
    for index, item in enumerate(items):
        where = f"KLIK_LLM_PROVIDERS[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be an object")
        name, kind, models = item.get("name"), item.get("type"), item.get("models")
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError(f"{where}.name must be a provider name (no '/')")
        if name in (SANDBOX, SANDBOX_ANTHROPIC):
            raise ConfigError(f"{where}.name may not be {name!r}: that name is the sandbox's")
        if not isinstance(kind, str) or kind not in LLM_TYPES:
            raise ConfigError(f"{where}.type must be one of {', '.join(LLM_TYPES)}")
        family, url = LLM_TYPES[kind]
        base_url, api_key = item.get("base_url", url), item.get("api_key", "")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url must be an http(s) URL")
        if not isinstance(api_key, str):
            raise ConfigError(f"{where}.api_key must be a string")
        if not isinstance(models, list) or not models:
            raise ConfigError(f"{where}.models must be a non-empty list")
        parsed = tuple(
            parse_model(
                {"id": model} if isinstance(model, str) else model,
                f"{where}.models[{n}]",
                TEXT_KINDS,
            )
            for n, model in enumerate(models)
        )
        providers.append(Provider(name, {family: Endpoint(base_url, api_key)}, parsed))
    return providers


def parse_aliases(text: str) -> tuple[Alias, ...]:
    """`KLIK_LLM_ALIASES`: a JSON object, alias -> its models in the order tried, each
    `provider/model` (the model id may itself hold '/'). Whether they exist is
    `check`'s to say."""
    items = _json("KLIK_LLM_ALIASES", text)
    if not isinstance(items, dict):
        raise ConfigError("KLIK_LLM_ALIASES must be a JSON object of alias -> models")
    aliases = []
    for name, targets in items.items():
        where = f"KLIK_LLM_ALIASES[{name!r}]"
        if not name or "/" in name:
            raise ConfigError(f"{where}: an alias is a name without '/'")
        if not isinstance(targets, list) or not all(
            isinstance(t, str) and "/" in t.strip("/") for t in targets
        ):
            raise ConfigError(f"{where} must be a list of 'provider/model'")
        pairs = tuple(tuple(t.split("/", 1)) for t in targets)
        aliases.append(Alias(name, tuple((p, m) for p, m in pairs)))
    return tuple(aliases)


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
                if not any(f in provider.endpoints for f in FAMILIES_OF_KIND[kind]):
                    raise ConfigError(
                        f"model {model.id!r} of {provider.name!r} serves {kind}, "
                        f"which that provider's API does not offer"
                    )
    model_ids = {m.id for p in catalogue.providers for m in p.models}
    for alias in catalogue.aliases:
        where = f"alias {alias.name!r}"
        if alias.name in names or alias.name in model_ids:
            raise ConfigError(f"{where} is also the name of a provider or a model")
        if not alias.targets or len(set(alias.targets)) != len(alias.targets):
            raise ConfigError(f"{where} must list its models once each")
        for target in alias.targets:
            _, model = catalogue.resolve_target(target)
            if not all(k.is_text for k in model.kinds):
                raise ConfigError(f"{where}: {'/'.join(target)} is not a TEXT/CHAT model")
    return catalogue
