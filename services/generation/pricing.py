"""What a job costs, in integer credits, with no I/O (API.md § Generation):

- IMAGE: `image` credits per image;
- AVATAR_VIDEO: `video_second` credits per started second of video, times
  `hd_video_factor` at 1080p;
- IMAGE_TO_VIDEO: `motion_clip` credits per clip;
- TEXT, CHAT: ceil(total_tokens * credits_per_million_tokens / 1e6) of the model (its
  own price, else `million_tokens`), at least `minimum_text`.

`estimate` is what CreateJob holds before the provider runs; it is an upper bound of
what `actual` charges for the same job, so capturing the actual price never needs
more than the hold (the wallet captures at most the held amount)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from services.generation.catalogue import Alias, Catalogue, Model
from services.generation.domain import Kind, Usage

# A byte-level BPE token covers at least one UTF-8 byte, so the prompt's byte length
# bounds its token count; chat framing adds a few tokens per message.
TOKENS_PER_MESSAGE = 8
# Slow speech, for estimating a script's video length: 120 words a minute. Avatar
# voices speak faster (the sandbox at 150), so the estimate covers the video.
WORDS_PER_SECOND = 2.0


class Unit(StrEnum):
    """`Price.unit` on the wire."""

    IMAGE = "image"
    CLIP = "clip"
    SECOND = "second"
    MILLION_TOKENS = "million_tokens"


@dataclass(frozen=True)
class Price:
    """One price in force (`GetPricing`); model "" is the kind's default."""

    kind: Kind
    model: str
    unit: Unit
    credits_per_unit: int
    minimum_credits: int


@dataclass(frozen=True)
class Request:
    """What the estimate of one job depends on."""

    # Everything the model reads (system prompt, earlier turns, prompt), or the
    # avatar's script.
    text: str = ""
    messages: int = 1  # TEXT, CHAT: chat messages sent
    max_tokens: int = 0  # TEXT, CHAT: 0 means the model's cap
    num_images: int = 0  # IMAGE: 0 means 1
    max_video_seconds: int = 0  # AVATAR_VIDEO: 0 means estimated from the script
    hd: bool = False  # AVATAR_VIDEO: 1080p


@dataclass(frozen=True)
class Prices:
    image: int = 5
    video_second: int = 1
    million_tokens: int = 1_000  # for TEXT/CHAT models without a price of their own
    minimum_text: int = 1
    hd_video_factor: int = 2  # a 1080p second costs this many 720p seconds
    motion_clip: int = 20  # IMAGE_TO_VIDEO: one clip

    def __post_init__(self) -> None:
        for name in (
            "image",
            "video_second",
            "million_tokens",
            "minimum_text",
            "hd_video_factor",
            "motion_clip",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"price {name} must be at least 1 credit")

    def tokens_rate(self, model: Model) -> int:
        """Credits per million tokens of a TEXT/CHAT model."""
        return model.credits_per_million_tokens or self.million_tokens

    def estimate(self, kind: Kind, model: Model, request: Request) -> int:
        """Credits to hold before the job runs: at least what `actual` will charge."""
        if kind.is_text:
            prompt = len(request.text.encode()) + TOKENS_PER_MESSAGE * (request.messages + 1)
            completion = request.max_tokens or model.max_tokens
            return self._tokens(model, prompt + completion)
        if kind is Kind.IMAGE:
            return self.image * max(request.num_images, 1)
        if kind is Kind.IMAGE_TO_VIDEO:
            return self.motion_clip
        seconds = request.max_video_seconds or math.ceil(
            len(request.text.split()) / WORDS_PER_SECOND
        )
        return self._second(request.hd) * max(seconds, 1)

    def _second(self, hd: bool) -> int:
        return self.video_second * (self.hd_video_factor if hd else 1)

    def actual(self, kind: Kind, model: Model, usage: Usage, *, hd: bool = False) -> int:
        """Credits a succeeded job costs, from what the provider reports (`hd`: an
        AVATAR_VIDEO at 1080p)."""
        if kind.is_text:
            return self._tokens(model, usage.tokens)
        if kind is Kind.IMAGE:
            return self.image * max(usage.images, 1)
        if kind is Kind.IMAGE_TO_VIDEO:
            return self.motion_clip  # per clip, however long the provider made it
        # Per *started* second; durations come in milliseconds at best, so float
        # noise below that (5.0000001 s) is not a started sixth second.
        seconds = math.ceil(round(usage.video_seconds, 3))
        return self._second(hd) * max(seconds, 1)

    def _tokens(self, model: Model, tokens: int) -> int:
        # ceil(tokens * rate / 1e6) in integers: no float rounding on money.
        credits = -(-max(tokens, 0) * self.tokens_rate(model) // 1_000_000)
        return max(credits, self.minimum_text)

    def alias_rate(self, catalogue: Catalogue, alias: Alias) -> int:
        """An alias's credits per million tokens: the highest of its models', which
        its hold is priced at."""
        return max(self.tokens_rate(catalogue.resolve_target(t)[1]) for t in alias.targets)

    def price_list(self, catalogue: Catalogue) -> list[Price]:
        """Every price in force: one per kind, then one per TEXT/CHAT model with a
        price of its own, then one per alias (its highest) and kind it serves."""
        prices: list[Price] = []
        for kind in (Kind.TEXT, Kind.CHAT):
            prices.append(
                Price(kind, "", Unit.MILLION_TOKENS, self.million_tokens, self.minimum_text)
            )
            prices.extend(
                Price(
                    kind,
                    m.id,
                    Unit.MILLION_TOKENS,
                    m.credits_per_million_tokens,
                    self.minimum_text,
                )
                for m in catalogue.text_models()
                if m.credits_per_million_tokens and m.serves(kind)
            )
            prices.extend(
                Price(
                    kind,
                    alias.name,
                    Unit.MILLION_TOKENS,
                    self.alias_rate(catalogue, alias),
                    self.minimum_text,
                )
                for alias in catalogue.aliases
                if kind in catalogue.alias_kinds(alias)
            )
        prices.append(Price(Kind.IMAGE, "", Unit.IMAGE, self.image, self.image))
        prices.append(
            Price(Kind.AVATAR_VIDEO, "", Unit.SECOND, self.video_second, self.video_second)
        )
        prices.append(Price(Kind.IMAGE_TO_VIDEO, "", Unit.CLIP, self.motion_clip, self.motion_clip))
        return prices
