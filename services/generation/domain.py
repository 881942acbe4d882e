"""The generation service's vocabulary, with no I/O: the kinds of job and what a
provider reports was consumed. Catalogue, pricing and the provider adapters all
speak in these terms; the jobs built on them add their own rules here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kit.errors import FailedPrecondition, InvalidArgument, NotFound


class Kind(StrEnum):
    """What a job produces (`Job.kind` on the wire)."""

    TEXT = "TEXT"
    CHAT = "CHAT"
    IMAGE = "IMAGE"
    AVATAR_VIDEO = "AVATAR_VIDEO"
    IMAGE_TO_VIDEO = "IMAGE_TO_VIDEO"  # an image of the caller's animated into a clip

    @classmethod
    def parse(cls, value: str) -> Kind:
        """The kind named by a request; INVALID_KIND for anything else."""
        try:
            return cls(value)
        except ValueError:
            raise InvalidArgument(
                "INVALID_KIND",
                f"kind must be one of {', '.join(cls)}, got {value!r}",
                details={"kind": value},
            ) from None

    @property
    def is_text(self) -> bool:
        return self in (Kind.TEXT, Kind.CHAT)


@dataclass(frozen=True)
class Usage:
    """What a provider reports was consumed by one job; the price is computed from
    it. Text kinds fill the token counts, IMAGE `images`, AVATAR_VIDEO `video_seconds`."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    video_seconds: float = 0.0
    images: int = 0

    @property
    def tokens(self) -> int:
        """Total tokens; some servers leave `total_tokens` out, so fall back to the sum."""
        return self.total_tokens or self.prompt_tokens + self.completion_tokens


# ---- jobs ------------------------------------------------------------------------------


class Status(StrEnum):
    """Where a job stands. The public five are `Job.status` on the wire; PENDING and
    ABANDONED are internal and never shown (such rows are NOT_FOUND to the API):

        PENDING ──hold placed──► QUEUED ──► RUNNING ──► SUCCEEDED | FAILED
           │                       └──────────┴──► CANCELLED | FAILED
           └──no hold / stale──► ABANDONED (then deleted)
    """

    PENDING = "PENDING"  # stored, hold not yet known to be placed
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    ABANDONED = "ABANDONED"  # a PENDING row given up on; its hold is being released

    @property
    def public(self) -> bool:
        return self in PUBLIC_STATUSES

    @property
    def finished(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    @property
    def active(self) -> bool:
        """Holds credits and has work left: what workers claim and CancelJob stops."""
        return self in (Status.QUEUED, Status.RUNNING)

    @classmethod
    def parse_filter(cls, value: str) -> Status | None:
        """ListJobs' `status`: "" for all, else one of the five public statuses."""
        if not value:
            return None
        try:
            status = cls(value)
        except ValueError:
            status = None
        if status is None or not status.public:
            raise InvalidArgument(
                "INVALID_STATUS",
                f"status must be one of {', '.join(PUBLIC_STATUSES)}, got {value!r}",
                details={"status": value},
            )
        return status


PUBLIC_STATUSES = (
    Status.QUEUED,
    Status.RUNNING,
    Status.SUCCEEDED,
    Status.FAILED,
    Status.CANCELLED,
)


class Settlement(StrEnum):
    """What the wallet still has to do for a finished job. The job's state commits
    first and names the money action; the action (idempotent by key) follows, inline
    and, should that fail, from the settler: so exactly one of capture or release
    ever happens, the one the winning state transition chose."""

    NONE = ""  # nothing (yet): the job holds its credits
    CAPTURE = "capture"
    RELEASE = "release"
    DONE = "done"
    LOST = "lost"  # the wallet refused for good (e.g. the hold had expired); logged


class Failure(StrEnum):
    """`JobError.code` of a failed job."""

    PROVIDER_ERROR = "PROVIDER_ERROR"
    PROVIDER_TIMEOUT = "PROVIDER_TIMEOUT"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    CONTENT_REJECTED = "CONTENT_REJECTED"
    # A reply's stream broke after its first token (it is not restarted elsewhere).
    STREAM_INTERRUPTED = "STREAM_INTERRUPTED"
    HOLD_EXPIRED = "HOLD_EXPIRED"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Options:
    """A job's kind-specific settings (JobOptions) and CHAT history: everything a
    worker needs besides kind, prompt, provider and model."""

    width: int = 0
    height: int = 0
    num_images: int = 0
    avatar_id: str = ""
    voice_id: str = ""
    max_tokens: int = 0
    temperature: float | None = None
    system_prompt: str = ""
    negative_prompt: str = ""
    max_video_seconds: int = 0
    # IMAGE (image-to-image), IMAGE_TO_VIDEO (required): the caller's own image to
    # start from — image `input_index` of their SUCCEEDED IMAGE job `input_job_id`.
    input_job_id: str = ""
    input_index: int = 0
    init_strength: float | None = None  # IMAGE with an input: 0.1..0.9 (default 0.5)
    motion_strength: int = 0  # IMAGE_TO_VIDEO: 1..10, 0 for the provider's default (5)
    aspect_ratio: str = ""  # AVATAR_VIDEO: "" (16:9), "16:9", "9:16", "1:1"
    quality: str = ""  # AVATAR_VIDEO: "" (720p), "720p", "1080p" (priced higher)
    history: tuple[Turn, ...] = ()


@dataclass(frozen=True)
class NewJob:
    """A CreateJob request, as the API read it."""

    kind: str
    prompt: str
    provider: str
    model: str
    options: Options
    idempotency_key: str
    fingerprint: str  # of the whole request but the key


MAX_PROMPT_CHARS = 32_000
MAX_TOKENS = 128_000
MAX_SIDE = 1536
MAX_IMAGES = 4
MAX_VIDEO_SECONDS = 3600
# An avatar video's frame, by aspect ratio and quality (HeyGen's `dimension`).
VIDEO_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "16:9": {"720p": (1280, 720), "1080p": (1920, 1080)},
    "9:16": {"720p": (720, 1280), "1080p": (1080, 1920)},
    "1:1": {"720p": (720, 720), "1080p": (1080, 1080)},
}
VIDEO_QUALITIES = ("720p", "1080p")


def video_size(options: Options) -> tuple[int, int]:
    """The frame an avatar video is rendered at: 16:9 at 720p unless asked otherwise."""
    return VIDEO_SIZES[options.aspect_ratio or "16:9"][options.quality or "720p"]


CHAT_ROLES = ("user", "assistant")

# Which options apply to which kinds (anything else must be left unset).
_APPLIES: dict[str, tuple[Kind, ...]] = {
    "width": (Kind.IMAGE,),
    "height": (Kind.IMAGE,),
    "num_images": (Kind.IMAGE,),
    "negative_prompt": (Kind.IMAGE,),
    "avatar_id": (Kind.AVATAR_VIDEO,),
    "voice_id": (Kind.AVATAR_VIDEO,),
    "max_video_seconds": (Kind.AVATAR_VIDEO,),
    "input_job_id": (Kind.IMAGE, Kind.IMAGE_TO_VIDEO),
    "input_index": (Kind.IMAGE, Kind.IMAGE_TO_VIDEO),
    "init_strength": (Kind.IMAGE,),
    "motion_strength": (Kind.IMAGE_TO_VIDEO,),
    "aspect_ratio": (Kind.AVATAR_VIDEO,),
    "quality": (Kind.AVATAR_VIDEO,),
    "max_tokens": (Kind.TEXT, Kind.CHAT),
    "temperature": (Kind.TEXT, Kind.CHAT),
    "system_prompt": (Kind.TEXT, Kind.CHAT),
    "history": (Kind.CHAT,),
}


def _invalid_option(option: str, message: str) -> InvalidArgument:
    return InvalidArgument("INVALID_OPTIONS", message, details={"option": option})


def check_prompt(prompt: str) -> str:
    if not prompt.strip():
        raise InvalidArgument("INVALID_ARGUMENT", "prompt is blank", details={"field": "prompt"})
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidArgument(
            "INVALID_ARGUMENT",
            f"prompt is over {MAX_PROMPT_CHARS} characters",
            details={"field": "prompt"},
        )
    return prompt


def check_options(kind: Kind, options: Options) -> Options:
    """INVALID_OPTIONS for an option set on a kind it does not apply to, or out of
    range. (Avatar and voice ids are checked against the provider's listing apart.)"""
    defaults = Options()
    for name, kinds in _APPLIES.items():
        if kind not in kinds and getattr(options, name) != getattr(defaults, name):
            raise _invalid_option(name, f"{name} does not apply to {kind} jobs")
    for side in ("width", "height"):
        value = getattr(options, side)
        if value and not (64 <= value <= MAX_SIDE and value % 8 == 0):
            raise _invalid_option(
                side, f"{side} must be 0 or a multiple of 8 from 64 to {MAX_SIDE}"
            )
    if not 0 <= options.num_images <= MAX_IMAGES:
        raise _invalid_option("num_images", f"num_images must be 0..{MAX_IMAGES}")
    if not 0 <= options.max_tokens <= MAX_TOKENS:
        raise _invalid_option("max_tokens", f"max_tokens must be 0..{MAX_TOKENS}")
    if options.temperature is not None and not 0.0 <= options.temperature <= 2.0:
        raise _invalid_option("temperature", "temperature must be 0..2")
    if not 0 <= options.max_video_seconds <= MAX_VIDEO_SECONDS:
        raise _invalid_option(
            "max_video_seconds", f"max_video_seconds must be 0..{MAX_VIDEO_SECONDS}"
        )
    if kind is Kind.IMAGE_TO_VIDEO and not options.input_job_id:
        raise _invalid_option("input_job_id", "IMAGE_TO_VIDEO needs input_job_id: the image")
    if not 0 <= options.input_index < MAX_IMAGES:
        raise _invalid_option("input_index", f"input_index must be 0..{MAX_IMAGES - 1}")
    if options.init_strength is not None and not (
        options.input_job_id and 0.1 <= options.init_strength <= 0.9
    ):
        raise _invalid_option("init_strength", "init_strength must be 0.1..0.9, with an input")
    if not 0 <= options.motion_strength <= 10:
        raise _invalid_option("motion_strength", "motion_strength must be 0..10")
    if options.aspect_ratio not in ("", *VIDEO_SIZES):
        raise _invalid_option(
            "aspect_ratio", f"aspect_ratio must be one of {', '.join(VIDEO_SIZES)}"
        )
    if options.quality not in ("", *VIDEO_QUALITIES):
        raise _invalid_option("quality", f"quality must be one of {', '.join(VIDEO_QUALITIES)}")
    for turn in options.history:
        if turn.role not in CHAT_ROLES:
            raise _invalid_option("history", f"history roles must be one of {CHAT_ROLES}")
    text = options.system_prompt + options.negative_prompt
    text += "".join(t.content for t in options.history)
    if len(text) > 4 * MAX_PROMPT_CHARS:
        raise _invalid_option("history", "the job's texts are too long")
    return options


def check_listed(option: str, value: str, listed: tuple[str, ...]) -> None:
    """An avatar or voice id must be one the provider lists ("" picks its default)."""
    if value and value not in listed:
        raise _invalid_option(option, f"unknown {option} {value!r}; see ListProviders")


def hold_expiry(now: datetime, deadline_seconds: float, max_queue_seconds: float) -> datetime:
    """When a new job's hold expires: after the longest the job may wait in the queue,
    plus its deadline on the provider, plus time to capture. Whole seconds, so a
    replayed PlaceHold sends exactly the same request."""
    ahead = max_queue_seconds + deadline_seconds + CAPTURE_MARGIN_SECONDS
    return (now + timedelta(seconds=ahead)).replace(microsecond=0) + timedelta(seconds=1)


# Time left on the hold, after the job's deadline, to capture it.
CAPTURE_MARGIN_SECONDS = 300.0


def can_start(now: datetime, deadline_seconds: float, hold_expires_at: datetime) -> bool:
    """Whether a queued job may still start: only if its hold outlives its deadline
    with time to capture (a job that waited too long fails HOLD_EXPIRED instead)."""
    latest = hold_expires_at - timedelta(seconds=deadline_seconds + CAPTURE_MARGIN_SECONDS / 2)
    return now <= latest


def charged(estimate: int, actual: int) -> int:
    """What a succeeded job costs: its actual price, never more than was held (the
    wallet captures at most the hold; the estimate is an upper bound anyway)."""
    return max(0, min(actual, estimate))


def finished_error(status: Status) -> FailedPrecondition:
    return FailedPrecondition(
        "JOB_ALREADY_FINISHED",
        f"the job already {status.lower()}",
        details={"status": status.value},
    )


@dataclass(frozen=True)
class Result:
    """A succeeded job's output (JobResult)."""

    text: str = ""
    asset_url: str = ""
    mime_type: str = ""
    usage: Usage = Usage()
    # TEXT, CHAT: the provider reported no usage; the tokens were counted (tokens.py).
    usage_estimated: bool = False


@dataclass(frozen=True)
class Job:
    """One job as stored: its request, its state, its money and its queue lease."""

    id: str
    seq: int  # creation order; "newest first" pages by it
    user_id: str
    kind: Kind
    status: Status
    prompt: str
    # What serves the job: for an alias, the first candidate available when it was
    # created, then the one whose reply began (runner.py).
    provider: str
    model: str
    options: Options
    estimate: int  # credits held
    cost_credits: int  # Job.cost_credits
    hold_id: str  # "" until the hold is known
    hold_expires_at: datetime
    created_at: datetime
    updated_at: datetime
    idempotency_key: str = ""
    fingerprint: str = ""
    provider_job_id: str = ""  # media kinds: stored before polling
    # Media kinds: when a worker was about to ask the provider to start the job (the
    # intent, stored before the paid call); None while no start was ever sent. A
    # resumed job with an intent and no provider job id is looked up on the provider
    # by its reference (runner.py) rather than started again.
    start_requested_at: datetime | None = None
    result: Result | None = None
    error_code: str = ""
    error_message: str = ""
    settlement: Settlement = Settlement.NONE
    deadline_at: datetime | None = None  # set when it starts RUNNING
    attempts: int = 0  # times a worker claimed it
    # TEXT, CHAT while RUNNING: the reply so far, saved at a bounded rate as it
    # streams, for WatchJob's late joiners (streams.py).
    partial_text: str = ""
    # TEXT, CHAT: the model alias the job was created with; "" when it named one
    # provider and model. Its candidates are tried in order when it runs.
    alias: str = ""

    @property
    def purged(self) -> bool:
        """Its user was deleted and what they wrote blanked (store.purge_user): a
        job's prompt is never blank otherwise (check_prompt)."""
        return not self.prompt


def is_job_id(text: str) -> bool:
    """Whether `text` could be a job id (a job's id is a canonical UUID)."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def job_not_found(job_id: str) -> NotFound:
    return NotFound("JOB_NOT_FOUND", "no such job", details={"job_id": job_id})
