"""The sandbox's provider-side jobs (Leonardo generations, HeyGen videos), in memory:
each completes on its Nth poll (or a set time after it was created),
deterministically, or fails, or never finishes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    COMPLETE = "complete"
    FAIL = "fail"
    STUCK = "stuck"


class Phase(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    kind: str  # "image" or "video"
    prompt: str  # the image prompt or the avatar's script
    model: str
    polls_needed: int
    outcome: Outcome
    width: int = 0
    height: int = 0
    num_images: int = 0
    avatar_id: str = ""
    voice_id: str = ""
    incomplete: bool = False  # finishes without its images or duration
    render_ms: int | None = None  # done this long after creation, not after N polls
    given_prompt: str = ""  # Leonardo: the prompt as the client gave it (listed)
    title: str = ""  # HeyGen: the video's title, as the client gave it
    callback_id: str = ""  # HeyGen: the client's reference, kept and listed
    motion_strength: int = 0  # Leonardo motion
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    polls: int = 0


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> Job:
        self._jobs[job.id] = job
        return job

    def listed(self, kinds: tuple[str, ...]) -> list[Job]:
        """The jobs of these kinds, newest first (the providers' list endpoints)."""
        return [job for job in reversed(self._jobs.values()) if job.kind in kinds]

    def poll(self, job_id: str) -> tuple[Job, Phase] | None:
        """Count one poll of the job and say where it stands; None for an unknown id."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        job.polls += 1
        return job, self.phase(job)

    def phase(self, job: Job) -> Phase:
        """Where the job stands now (polling it counts apart, in `poll`)."""
        if job.outcome is Outcome.STUCK:
            return Phase.PENDING
        if job.render_ms is not None:
            if (time.time() - job.created_at) * 1000 < job.render_ms:
                return Phase.PENDING
        elif job.polls < job.polls_needed:
            return Phase.PENDING
        return Phase.FAILED if job.outcome is Outcome.FAIL else Phase.DONE

    def clear(self) -> None:
        self._jobs.clear()
