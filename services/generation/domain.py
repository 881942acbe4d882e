"""The generation service's vocabulary, with no I/O: the kinds of job and what a
provider reports was consumed. Catalogue, pricing and the provider adapters all
speak in these terms; the jobs built on them add their own rules here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kit.errors import InvalidArgument


class Kind(StrEnum):
    """What a job produces (`Job.kind` on the wire)."""

    TEXT = "TEXT"
    CHAT = "CHAT"
    IMAGE = "IMAGE"
    AVATAR_VIDEO = "AVATAR_VIDEO"

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
