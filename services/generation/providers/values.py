"""What the adapters take and give back: plain values, no I/O. Every result names
the provider that served it (`sandbox` when the sandbox did)."""

from __future__ import annotations

from dataclasses import dataclass

from services.generation.domain import Usage


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class TextRequest:
    model: str
    prompt: str  # the text to complete (TEXT) or the new user message (CHAT)
    system_prompt: str = ""
    history: tuple[Turn, ...] = ()  # CHAT: earlier turns, oldest first
    max_tokens: int = 0  # 0 sends no cap; jobs send the cap their hold was priced on
    temperature: float | None = None


@dataclass(frozen=True)
class TextResult:
    provider: str
    model: str
    text: str
    usage: Usage
    finish_reason: str  # "stop", or "length" when max_tokens cut it short
    mime_type: str = "text/plain"


@dataclass(frozen=True)
class TextDelta:
    """A streamed reply's next piece of text, as it arrived."""

    text: str  # the new text, never empty


@dataclass(frozen=True)
class TextEnd:
    """The last item of a streamed reply."""

    provider: str
    model: str  # what the provider says ran (or the requested model)
    finish_reason: str  # "stop" | "length"
    usage: Usage | None  # None: the provider sent no usage (the caller estimates it)


TextStreamItem = TextDelta | TextEnd


@dataclass(frozen=True)
class ImageRequest:
    model: str
    prompt: str
    negative_prompt: str = ""
    width: int = 0  # 0: the provider's default
    height: int = 0
    num_images: int = 1
    init_image_id: str = ""  # image-to-image: an init image uploaded to the provider
    init_strength: float = 0.5  # how much of the init image shows through, 0.1..0.9


@dataclass(frozen=True)
class VideoRequest:
    model: str
    script: str
    avatar_id: str = ""  # "": the provider's default avatar
    voice_id: str = ""
    size: tuple[int, int] = (1280, 720)  # the frame: width, height
    # Our reference for the video (its `title` and `callback_id` at HeyGen), by which
    # a start whose answer was lost is found again in the provider's list (find).
    reference: str = ""


@dataclass(frozen=True)
class Started:
    """A job running on the provider's side. Store `job_id` before polling it: a
    worker that resumes the job polls this id and never starts a second paid one."""

    provider: str
    job_id: str


# How far the provider's clock may be behind ours when a lost start is looked up by
# the time it was asked for (find): its jobs created this long before still match.
START_LOOKUP_SKEW_SECONDS = 60.0
# Pages of the provider's job list read to look a lost start up, at most.
START_LOOKUP_PAGES = 10


@dataclass(frozen=True)
class MediaResult:
    provider: str
    job_id: str
    urls: tuple[str, ...]  # where the provider serves the output (often expiring)
    mime_type: str
    usage: Usage
    thumbnail_url: str = ""

    @property
    def asset_url(self) -> str:
        return self.urls[0]


@dataclass(frozen=True)
class Progress:
    """One poll of a provider job: its status in the provider's words, and the
    result once it is done."""

    status: str
    result: MediaResult | None = None

    @property
    def done(self) -> bool:
        return self.result is not None


@dataclass(frozen=True)
class Avatar:
    id: str
    name: str
    preview_url: str = ""


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    language: str = ""


@dataclass(frozen=True)
class Listing:
    """An avatar-video provider's catalogue."""

    avatars: tuple[Avatar, ...] = ()
    voices: tuple[Voice, ...] = ()
