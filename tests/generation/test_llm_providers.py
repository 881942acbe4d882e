"""KLIK_LLM_PROVIDERS and KLIK_LLM_ALIASES: several LLM providers at once, of either
API, and aliases that route over them; mistakes are ConfigErrors that say what is
wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit.config import ConfigError
from kit.errors import InvalidArgument
from services.generation.catalogue import Family
from services.generation.domain import Kind
from services.generation.settings import catalogue_from_env

PROVIDERS = [
    {
        "name": "openai",
        "type": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key": "sk-o",
        "models": ["gpt-4o-mini"],
    },
    {
        "name": "claude",
        "type": "anthropic",
        "api_key": "sk-a",
        "models": [
            {"id": "claude-3-5-haiku-latest", "credits_per_million_tokens": 4000},
        ],
    },
    {
        "name": "ollama",
        "type": "openai",
        "base_url": "http://127.0.0.1:11434/v1",
        "models": ["llama3.2"],
    },
]
ALIASES = {
    "default-chat": ["openai/gpt-4o-mini", "claude/claude-3-5-haiku-latest", "ollama/llama3.2"]
}


def env(providers: Any = PROVIDERS, aliases: Any = ALIASES, **more: str) -> dict[str, str]:
    found = {"KLIK_LLM_PROVIDERS": json.dumps(providers), **more}
    if aliases is not None:
        found["KLIK_LLM_ALIASES"] = json.dumps(aliases)
    return found


def test_every_listed_provider_is_configured_with_its_api_and_models() -> None:
    catalogue = catalogue_from_env(env())
    names = [p.name for p in catalogue.providers]
    assert names == ["openai", "claude", "ollama", "sandbox"], "the sandbox keeps media"
    openai, claude, ollama = catalogue.providers[:3]
    assert openai.endpoints == {Family.OPENAI: openai.endpoints[Family.OPENAI]}
    assert openai.endpoints[Family.OPENAI].api_key == "sk-o"
    assert claude.endpoints[Family.ANTHROPIC].base_url == "https://api.anthropic.com/v1"
    assert claude.endpoints[Family.ANTHROPIC].api_key == "sk-a"
    assert ollama.endpoints[Family.OPENAI].api_key == ""
    [haiku] = claude.models
    assert (haiku.kinds, haiku.credits_per_million_tokens) == ((Kind.TEXT, Kind.CHAT), 4000)
    sandbox = catalogue.provider("sandbox")
    assert sandbox is not None and sandbox.kinds == (
        Kind.IMAGE,
        Kind.AVATAR_VIDEO,
        Kind.IMAGE_TO_VIDEO,
    )
    assert catalogue.provider("sandbox-anthropic") is None
    provider, model = catalogue.resolve(Kind.CHAT)
    assert (provider.name, model.id) == ("openai", "gpt-4o-mini"), "first listed is default"


def test_the_klik_openai_variables_still_add_a_provider_before_the_list() -> None:
    catalogue = catalogue_from_env(
        env(aliases=None, KLIK_OPENAI_BASE_URL="http://vllm:8000/v1", KLIK_OPENAI_NAME="vllm")
    )
    assert [p.name for p in catalogue.providers][:4] == ["vllm", "openai", "claude", "ollama"]


def test_an_alias_routes_over_its_models_in_order() -> None:
    catalogue = catalogue_from_env(env())
    for provider in ("", "default-chat"):
        route = catalogue.route(Kind.CHAT, provider, "default-chat")
        assert route.alias == "default-chat"
        assert [(p.name, m.id) for p, m in route.candidates] == [
            ("openai", "gpt-4o-mini"),
            ("claude", "claude-3-5-haiku-latest"),
            ("ollama", "llama3.2"),
        ]
    direct = catalogue.route(Kind.CHAT, "claude", "claude-3-5-haiku-latest")
    assert (direct.alias, [p.name for p, _ in direct.candidates]) == ("", ["claude"])
    with pytest.raises(InvalidArgument) as refused:
        catalogue.route(Kind.IMAGE, "", "default-chat")
    assert refused.value.reason == "UNKNOWN_MODEL"


def test_with_no_llm_configured_the_sandbox_serves_both_apis_under_an_alias() -> None:
    catalogue = catalogue_from_env({"KLIK_SANDBOX_URL": "http://127.0.0.1:9999"})
    route = catalogue.route(Kind.TEXT, "", "default-chat")
    assert [(p.name, m.id) for p, m in route.candidates] == [
        ("sandbox", "sandbox-text"),
        ("sandbox-anthropic", "sandbox-text"),
    ]
    assert catalogue.route(Kind.TEXT).candidates[0][0].name == "sandbox", "'' is no alias"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"KLIK_LLM_PROVIDERS": "[{"}, "KLIK_LLM_PROVIDERS is not JSON"),
        ({"KLIK_LLM_PROVIDERS": "{}"}, "must be a JSON list of providers"),
        (env([{"type": "openai", "models": ["m"]}], None), "KLIK_LLM_PROVIDERS[0].name"),
        (env([{"name": "a/b", "type": "openai", "models": ["m"]}], None), "no '/'"),
        (env([{"name": "x", "type": "gemini", "models": ["m"]}], None), ".type must be one of"),
        (env([{"name": "x", "type": "openai", "models": []}], None), ".models must be"),
        (
            env([{"name": "x", "type": "openai", "base_url": "ftp://h", "models": ["m"]}], None),
            ".base_url must be an http(s) URL",
        ),
        (
            env(
                [{"name": "x", "type": "openai", "models": [{"id": "m", "kinds": ["IMAGE"]}]}],
                None,
            ),
            "which that provider's API does not offer",
        ),
        (
            env(
                [
                    {
                        "name": "x",
                        "type": "openai",
                        "models": [{"id": "m", "credits_per_million_tokens": -1}],
                    }
                ],
                None,
            ),
            "KLIK_LLM_PROVIDERS[0].models[0].credits_per_million_tokens",
        ),
        (env([{"name": "sandbox", "type": "openai", "models": ["m"]}], None), "the sandbox's"),
        (env([PROVIDERS[0], PROVIDERS[0]], None), "provider names must be unique"),
        ({**env(aliases=None), "KLIK_LLM_ALIASES": "[]"}, "must be a JSON object"),
        (env(aliases={"chat": "openai/gpt-4o-mini"}), "list of 'provider/model'"),
        (env(aliases={"chat": ["gpt-4o-mini"]}), "list of 'provider/model'"),
        (env(aliases={"chat": ["openai/nope"]}), "no model 'nope' on a provider 'openai'"),
        (env(aliases={"chat": []}), "must list its models once each"),
        (env(aliases={"openai": ["openai/gpt-4o-mini"]}), "also the name of a provider"),
        (env(aliases={"llama3.2": ["openai/gpt-4o-mini"]}), "or a model"),
    ],
)
def test_mistakes_are_refused_at_startup_with_what_is_wrong(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        catalogue_from_env(variables)
    assert message in str(refused.value)


def test_an_alias_may_not_name_a_media_model() -> None:
    with pytest.raises(ConfigError, match="is not a TEXT/CHAT model"):
        catalogue_from_env(
            {
                "KLIK_LLM_ALIASES": json.dumps({"pics": ["sandbox/sandbox-image"]}),
            }
        )
