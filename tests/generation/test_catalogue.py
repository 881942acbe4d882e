"""The catalogue from configuration: routing to the sandbox unless real keys are
configured, models per provider and kind, defaults, and KLIK_MODELS."""

from __future__ import annotations

import json

import pytest

from kit.config import ConfigError
from kit.errors import InvalidArgument
from sandbox.settings import SandboxSettings
from services.generation.catalogue import Family
from services.generation.domain import Kind
from services.generation.settings import GenerationSettings, catalogue_from_env, sandbox_url

ALL = tuple(Kind)


def test_with_no_keys_everything_routes_to_the_sandbox() -> None:
    catalogue = catalogue_from_env({"KLIK_SANDBOX_URL": "http://127.0.0.1:9999/"})
    sandbox, messages = catalogue.providers
    assert (messages.name, messages.sandbox, messages.kinds) == (
        "sandbox-anthropic",
        True,
        (Kind.TEXT, Kind.CHAT),
    ), "the sandbox's Messages API serves text too"
    assert messages.endpoints[Family.ANTHROPIC].base_url == "http://127.0.0.1:9999/v1"
    assert (sandbox.name, sandbox.sandbox, sandbox.kinds) == ("sandbox", True, ALL)
    assert {f: e.base_url for f, e in sandbox.endpoints.items()} == {
        Family.OPENAI: "http://127.0.0.1:9999/v1",
        Family.LEONARDO: "http://127.0.0.1:9999/api/rest/v1",
        Family.HEYGEN: "http://127.0.0.1:9999",
    }
    assert all(not e.api_key for e in sandbox.endpoints.values())
    for kind, model in [
        (Kind.TEXT, "sandbox-text"),
        (Kind.CHAT, "sandbox-text"),
        (Kind.IMAGE, "sandbox-image"),
        (Kind.AVATAR_VIDEO, "sandbox-avatar"),
    ]:
        provider, chosen = catalogue.resolve(kind)
        assert (provider.name, chosen.id) == ("sandbox", model)
    assert catalogue_from_env({}).providers[0].endpoints[Family.HEYGEN].base_url == (
        "http://127.0.0.1:8090"
    ), "KLIK_SANDBOX_PORT's default"


def test_sandbox_address_defaults_and_overrides() -> None:
    assert sandbox_url({}) == "http://127.0.0.1:8090"
    assert sandbox_url({"KLIK_SANDBOX_PORT": "9000"}) == "http://127.0.0.1:9000"
    assert sandbox_url({"KLIK_SANDBOX_URL": "http://sandbox:8090"}) == "http://sandbox:8090"


def test_the_default_sandbox_url_is_where_the_sandbox_listens_by_default() -> None:
    for env in ({}, {"KLIK_SANDBOX_PORT": "9000"}):
        settings = SandboxSettings.from_env(env)
        assert sandbox_url(env) == f"http://{settings.host}:{settings.port}"


def test_a_real_key_takes_its_kinds_away_from_the_sandbox() -> None:
    catalogue = catalogue_from_env({"KLIK_OPENAI_API_KEY": "sk-secret"})
    openai, sandbox = catalogue.providers
    assert (openai.name, openai.kinds, openai.sandbox) == ("openai", (Kind.TEXT, Kind.CHAT), False)
    assert openai.endpoints[Family.OPENAI].base_url == "https://api.openai.com/v1"
    assert openai.endpoints[Family.OPENAI].api_key == "sk-secret"
    assert "sk-secret" not in repr(catalogue), "keys stay out of logs and reprs"
    assert sandbox.kinds == (Kind.IMAGE, Kind.AVATAR_VIDEO, Kind.IMAGE_TO_VIDEO)
    assert [m.id for m in sandbox.models] == ["sandbox-image", "sandbox-avatar", "sandbox-motion"]
    assert catalogue.resolve(Kind.TEXT)[1].id == "gpt-4o-mini"
    assert catalogue.resolve(Kind.TEXT, "openai", "gpt-4o")[1].id == "gpt-4o"
    with pytest.raises(InvalidArgument) as error:
        catalogue.resolve(Kind.TEXT, "sandbox")
    assert error.value.reason == "UNKNOWN_PROVIDER"


def test_every_key_configured_means_no_sandbox() -> None:
    catalogue = catalogue_from_env(
        {
            "KLIK_OPENAI_API_KEY": "a",
            "KLIK_LEONARDO_API_KEY": "b",
            "KLIK_HEYGEN_API_KEY": "c",
            "KLIK_HEYGEN_BASE_URL": "https://heygen.example",
        }
    )
    assert [p.name for p in catalogue.providers] == ["openai", "leonardo", "heygen"]
    assert catalogue.provider("sandbox") is None
    heygen = catalogue.provider("heygen")
    assert heygen is not None
    assert heygen.endpoints[Family.HEYGEN].base_url == "https://heygen.example"
    assert catalogue.resolve(Kind.IMAGE)[1].id == "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"


def test_a_local_openai_compatible_server_needs_no_key() -> None:
    models = [
        {"provider": "ollama", "id": "llama3.2", "kinds": ["TEXT", "CHAT"], "default": True},
        {
            "provider": "ollama",
            "id": "qwen2.5",
            "kinds": ["CHAT"],
            "credits_per_million_tokens": 200,
            "max_tokens": 2048,
        },
    ]
    catalogue = catalogue_from_env(
        {
            "KLIK_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
            "KLIK_OPENAI_NAME": "ollama",
            "KLIK_MODELS": json.dumps(models),
        }
    )
    ollama = catalogue.provider("ollama")
    assert ollama is not None
    assert ollama.endpoints[Family.OPENAI].api_key == ""
    assert [m.id for m in ollama.models] == ["llama3.2", "qwen2.5"]
    assert catalogue.resolve(Kind.CHAT)[1].id == "llama3.2"
    qwen = catalogue.resolve(Kind.CHAT, "ollama", "qwen2.5")[1]
    assert (qwen.credits_per_million_tokens, qwen.max_tokens) == (200, 2048)
    with pytest.raises(InvalidArgument) as error:
        catalogue.resolve(Kind.TEXT, "ollama", "qwen2.5")
    assert error.value.reason == "UNKNOWN_MODEL"


def test_defaults_fall_back_to_the_first_model_and_is_default_is_per_kind() -> None:
    catalogue = catalogue_from_env({"KLIK_OPENAI_API_KEY": "k"})
    openai = catalogue.providers[0]
    mini, big = openai.models
    assert openai.is_default(mini) and not openai.is_default(big)
    sandbox = catalogue.providers[1]
    assert all(sandbox.is_default(m) for m in sandbox.models), "one model per kind"


def test_klik_models_mistakes_are_named() -> None:
    cases = {
        "not json": "not JSON",
        "{}": "a JSON list",
        '[{"provider": "nobody", "id": "x", "kinds": ["TEXT"]}]': "unknown providers",
        '[{"provider": "sandbox", "id": "x", "kinds": ["SONG"]}]': "kinds",
        '[{"provider": "sandbox", "kinds": ["TEXT"]}]': ".id",
        '[{"provider": "sandbox", "id": "x", "kinds": ["TEXT"], '
        '"credits_per_million_tokens": -1}]': "credits_per_million_tokens",
    }
    for value, says in cases.items():
        with pytest.raises(ConfigError, match=says):
            catalogue_from_env({"KLIK_MODELS": value})
    # A model of a kind its provider's API does not offer.
    with pytest.raises(ConfigError, match="does not offer"):
        catalogue_from_env(
            {
                "KLIK_OPENAI_API_KEY": "k",
                "KLIK_MODELS": '[{"provider": "openai", "id": "x", "kinds": ["IMAGE"]}]',
            }
        )
    with pytest.raises(ConfigError, match="sandbox"):
        catalogue_from_env({"KLIK_OPENAI_NAME": "sandbox", "KLIK_OPENAI_API_KEY": "k"})


def test_models_for_a_provider_without_a_key_are_skipped() -> None:
    catalogue = catalogue_from_env(
        {"KLIK_MODELS": '[{"provider": "leonardo", "id": "x", "kinds": ["IMAGE"]}]'}
    )
    assert [p.name for p in catalogue.providers] == ["sandbox", "sandbox-anthropic"]


def test_kinds_parse_or_are_refused() -> None:
    assert Kind.parse("AVATAR_VIDEO") is Kind.AVATAR_VIDEO
    with pytest.raises(InvalidArgument) as error:
        Kind.parse("video")
    assert error.value.reason == "INVALID_KIND"


def test_call_settings_come_from_the_environment() -> None:
    settings = GenerationSettings.from_env(
        {
            "KLIK_PROVIDER_TIMEOUT_SECONDS": "12",
            "KLIK_PROVIDER_MAX_ATTEMPTS": "2",
            "KLIK_BREAKER_FAILURES": "9",
            "KLIK_BREAKER_COOLDOWN_SECONDS": "45",
            "KLIK_PROVIDER_CATALOGUE_TTL_SECONDS": "5",
            "KLIK_TEXT_DEADLINE_SECONDS": "30",
            "KLIK_VIDEO_DEADLINE_SECONDS": "900",
        }
    )
    policy = settings.policy
    assert (policy.timeouts.read, policy.retry.max_attempts) == (12.0, 2)
    assert (policy.breaker.failure_threshold, policy.breaker.cooldown_seconds) == (9, 45.0)
    assert policy.listing_ttl_seconds == 5.0
    assert settings.deadlines == {
        Kind.TEXT: 30.0,
        Kind.CHAT: 30.0,
        Kind.IMAGE: 300.0,
        Kind.AVATAR_VIDEO: 900.0,
        Kind.IMAGE_TO_VIDEO: 600.0,
    }
    with pytest.raises(ConfigError):
        GenerationSettings.from_env({"KLIK_PROVIDER_MAX_ATTEMPTS": "0"})
