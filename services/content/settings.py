"""The content service's own settings (beyond the kit's `ServiceSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.config import ConfigError, env_float
from kit.idempotency import MIN_RETENTION_HOURS

# A chat turn or lesson may be retried with the client's idempotency key, and a
# retry writes its half of the job's link again: the link must outlive the key's
# replay window, or the retry would wait for an outcome that came and went.
MIN_JOB_LINK_HOURS = MIN_RETENTION_HOURS


@dataclass(frozen=True)
class ContentOptions:
    # How long a job's link (job_links.py) is kept after it was last written
    # (`KLIK_CONTENT_JOB_LINKS_KEEP_HOURS`, >= 24). Most links are of jobs users
    # started themselves, which no chat or lesson ever claims.
    job_link_keep_hours: float = 168.0
    # How often old links are pruned (`KLIK_CONTENT_PRUNE_SECONDS`).
    prune_interval: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContentOptions:
        options = cls(
            job_link_keep_hours=env_float(
                "KLIK_CONTENT_JOB_LINKS_KEEP_HOURS", cls.job_link_keep_hours, env
            ),
            prune_interval=env_float("KLIK_CONTENT_PRUNE_SECONDS", cls.prune_interval, env),
        )
        if options.job_link_keep_hours < MIN_JOB_LINK_HOURS:
            raise ConfigError(
                f"KLIK_CONTENT_JOB_LINKS_KEEP_HOURS must be at least {MIN_JOB_LINK_HOURS:g}"
            )
        if options.prune_interval <= 0:
            raise ConfigError("KLIK_CONTENT_PRUNE_SECONDS must be positive")
        return options
