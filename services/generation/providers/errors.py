"""Why a provider call failed, as domain errors whose reason is the `JobError.code` a
failed job records. Messages name the provider and what happened, never a key or a
stack trace."""

from __future__ import annotations

from typing import ClassVar

import grpc

from kit.errors import Unavailable


class ProviderError(Unavailable):
    """The provider could not produce the result (PROVIDER_ERROR): it answered with
    an error, an unusable body, or reported the job failed."""

    reason_code: ClassVar[str] = "PROVIDER_ERROR"

    def __init__(
        self, provider: str, message: str, *, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(
            self.reason_code,
            message,
            details={"provider": provider},
            retry_after_seconds=retry_after_seconds,
        )
        self.provider = provider


class ProviderTimeout(ProviderError):
    """No answer in time: a call's timeout, or a job not done by its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason_code = "PROVIDER_TIMEOUT"


class ProviderUnavailable(ProviderError):
    """The provider's circuit is open: refused at once, nothing was sent."""

    reason_code = "PROVIDER_UNAVAILABLE"


class ContentRejected(ProviderError):
    """The provider refused the content (its safety filter)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason_code = "CONTENT_REJECTED"


class StreamInterrupted(ProviderError):
    """A streamed reply broke after its first text arrived (the connection dropped,
    it stalled past the read timeout, ended early or sent a malformed chunk). Never
    retried: the caller already has part of the text, which the message measures."""

    reason_code = "STREAM_INTERRUPTED"


class Malformed(ValueError):
    """A provider's 2xx body does not have the shape its API documents."""
