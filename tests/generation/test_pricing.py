"""Every pricing rule of API.md § Generation, with its rounding and minimum, and the
promise CreateJob relies on: the estimate held covers what the job is charged."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.config import ConfigError
from sandbox import content
from services.generation.catalogue import Model
from services.generation.domain import Kind, Usage
from services.generation.pricing import Price, Prices, Request, Unit
from services.generation.settings import GenerationSettings, catalogue_from_env

DEFAULT = Prices()
CHEAP = Model("cheap", (Kind.TEXT, Kind.CHAT))  # no price of its own: the kind's 1000
DEAR = Model("dear", (Kind.TEXT,), credits_per_million_tokens=10_000, max_tokens=500)
IMAGE = Model("img", (Kind.IMAGE,))
VIDEO = Model("vid", (Kind.AVATAR_VIDEO,))


def test_api_md_defaults() -> None:
    assert (DEFAULT.image, DEFAULT.video_second, DEFAULT.minimum_text) == (5, 1, 1)


def test_image_costs_5_credits_per_image() -> None:
    assert DEFAULT.actual(Kind.IMAGE, IMAGE, Usage(images=1)) == 5
    assert DEFAULT.actual(Kind.IMAGE, IMAGE, Usage(images=3)) == 15
    assert DEFAULT.estimate(Kind.IMAGE, IMAGE, Request(num_images=4)) == 20
    assert DEFAULT.estimate(Kind.IMAGE, IMAGE, Request(num_images=0)) == 5, "0 means 1"


def test_video_costs_1_credit_per_started_second() -> None:
    def charge(seconds: float) -> int:
        return DEFAULT.actual(Kind.AVATAR_VIDEO, VIDEO, Usage(video_seconds=seconds))

    assert charge(5.0) == 5
    assert charge(5.001) == 6, "a started second counts"
    assert charge(0.2) == 1
    assert charge(5.0000001) == 5, "float noise below a millisecond is no started second"
    assert charge(0.0) == 1, "at least one second"
    assert Prices(video_second=3).actual(Kind.AVATAR_VIDEO, VIDEO, Usage(video_seconds=2.5)) == 9


def test_text_costs_ceil_of_tokens_times_rate_per_million_at_least_1() -> None:
    def charge(model: Model, total: int, prices: Prices = DEFAULT) -> int:
        return prices.actual(Kind.TEXT, model, Usage(total_tokens=total))

    assert charge(CHEAP, 1_000) == 1  # 1000 * 1000 / 1e6 = 1 exactly
    assert charge(CHEAP, 1_001) == 2  # 1.001 rounds up
    assert charge(CHEAP, 1_500) == 2
    assert charge(CHEAP, 10) == 1, "at least 1"
    assert charge(CHEAP, 0) == 1, "at least 1"
    assert charge(DEAR, 250) == 3  # 250 * 10000 / 1e6 = 2.5 -> 3
    assert charge(DEAR, 1_000_000) == 10_000
    assert charge(CHEAP, 10, Prices(minimum_text=3)) == 3
    # CHAT is priced like TEXT; a server without total_tokens is summed.
    assert DEFAULT.actual(Kind.CHAT, CHEAP, Usage(prompt_tokens=700, completion_tokens=800)) == 2


def test_text_arithmetic_is_exact_where_floats_are_not() -> None:
    tokens = 10**16 + 1  # 1e16 + 1 has no exact double: a float ceil would undercharge
    assert math.ceil(tokens * 1 / 1e6) == 10**10, "the float answer, one credit short"
    assert Prices(million_tokens=1).actual(Kind.TEXT, CHEAP, Usage(total_tokens=tokens)) == (
        10**10 + 1
    )


def test_text_estimate_bounds_prompt_by_bytes_and_completion_by_max_tokens() -> None:
    request = Request(text="héllo wörld", messages=2, max_tokens=100)
    prompt_bound = len("héllo wörld".encode()) + 8 * 3  # 13 bytes + framing
    assert DEFAULT.estimate(Kind.TEXT, DEAR, request) == math.ceil(
        (prompt_bound + 100) * 10_000 / 1e6
    )
    # No max_tokens: the model's cap (which the adapter then sends).
    assert DEFAULT.estimate(Kind.TEXT, DEAR, Request(text="x")) == math.ceil(
        (1 + 16 + 500) * 10_000 / 1e6
    )


def test_video_estimate_from_max_seconds_or_the_script() -> None:
    assert DEFAULT.estimate(Kind.AVATAR_VIDEO, VIDEO, Request(max_video_seconds=30)) == 30
    # 7 words at 2 words a second: 3.5 -> 4 seconds.
    script = "one two three four five six seven"
    assert DEFAULT.estimate(Kind.AVATAR_VIDEO, VIDEO, Request(text=script)) == 4
    assert DEFAULT.estimate(Kind.AVATAR_VIDEO, VIDEO, Request(text="")) == 1


@given(words=st.lists(st.sampled_from(["rain", "é", "tide", "[[fault:x]]"]), max_size=200))
def test_a_sandbox_video_never_costs_more_than_its_estimate(words: list[str]) -> None:
    script = " ".join(words)
    estimate = DEFAULT.estimate(Kind.AVATAR_VIDEO, VIDEO, Request(text=script))
    usage = Usage(video_seconds=content.video_seconds(script))
    assert DEFAULT.actual(Kind.AVATAR_VIDEO, VIDEO, usage) <= estimate


@given(
    prompt=st.text(max_size=300),
    max_tokens=st.integers(1, 5_000),
    rate=st.integers(1, 100_000),
)
def test_a_text_job_never_costs_more_than_its_estimate(
    prompt: str, max_tokens: int, rate: int
) -> None:
    """What the sandbox reports for a prompt (words <= bytes) and a reply cut at
    max_tokens stays within the estimate."""
    model = Model("m", (Kind.TEXT,), credits_per_million_tokens=rate)
    reply, _ = content.reply("m", prompt, max_tokens)
    usage = Usage(
        prompt_tokens=content.tokens(prompt),
        completion_tokens=content.tokens(reply),
        total_tokens=content.tokens(prompt) + content.tokens(reply),
    )
    estimate = DEFAULT.estimate(Kind.TEXT, model, Request(text=prompt, max_tokens=max_tokens))
    assert DEFAULT.actual(Kind.TEXT, model, usage) <= estimate


def test_price_list_has_every_kind_then_the_models_with_their_own_price() -> None:
    catalogue = catalogue_from_env({"KLIK_OPENAI_API_KEY": "sk-test"})
    assert DEFAULT.price_list(catalogue) == [
        Price(Kind.TEXT, "", Unit.MILLION_TOKENS, 1_000, 1),
        Price(Kind.TEXT, "gpt-4o-mini", Unit.MILLION_TOKENS, 1_000, 1),
        Price(Kind.TEXT, "gpt-4o", Unit.MILLION_TOKENS, 10_000, 1),
        Price(Kind.CHAT, "", Unit.MILLION_TOKENS, 1_000, 1),
        Price(Kind.CHAT, "gpt-4o-mini", Unit.MILLION_TOKENS, 1_000, 1),
        Price(Kind.CHAT, "gpt-4o", Unit.MILLION_TOKENS, 10_000, 1),
        Price(Kind.IMAGE, "", Unit.IMAGE, 5, 5),
        Price(Kind.AVATAR_VIDEO, "", Unit.SECOND, 1, 1),
        Price(Kind.IMAGE_TO_VIDEO, "", Unit.CLIP, 20, 20),
    ]
    sandbox_only = catalogue_from_env({})
    assert [(p.kind, p.model) for p in DEFAULT.price_list(sandbox_only)] == [
        (Kind.TEXT, ""),
        (Kind.TEXT, "default-chat"),
        (Kind.CHAT, ""),
        (Kind.CHAT, "default-chat"),
        (Kind.IMAGE, ""),
        (Kind.AVATAR_VIDEO, ""),
        (Kind.IMAGE_TO_VIDEO, ""),
    ], "sandbox models have no price of their own; the sandbox's alias is listed"


def test_an_alias_is_priced_at_its_dearest_model() -> None:
    catalogue = catalogue_from_env(
        {
            "KLIK_OPENAI_API_KEY": "sk-test",
            "KLIK_LLM_ALIASES": '{"chat": ["openai/gpt-4o-mini", "openai/gpt-4o"]}',
        }
    )
    [alias] = catalogue.aliases
    assert DEFAULT.alias_rate(catalogue, alias) == 10_000
    assert [p for p in DEFAULT.price_list(catalogue) if p.model == "chat"] == [
        Price(Kind.TEXT, "chat", Unit.MILLION_TOKENS, 10_000, 1),
        Price(Kind.CHAT, "chat", Unit.MILLION_TOKENS, 10_000, 1),
    ]


def test_prices_come_from_the_environment() -> None:
    settings = GenerationSettings.from_env(
        {
            "KLIK_PRICE_IMAGE": "7",
            "KLIK_PRICE_VIDEO_SECOND": "2",
            "KLIK_PRICE_MILLION_TOKENS": "500",
            "KLIK_PRICE_TEXT_MINIMUM": "2",
        }
    )
    assert settings.prices == Prices(image=7, video_second=2, million_tokens=500, minimum_text=2)
    for bad in ({"KLIK_PRICE_IMAGE": "0"}, {"KLIK_PRICE_VIDEO_SECOND": "cheap"}):
        with pytest.raises(ConfigError):
            GenerationSettings.from_env(bad)
