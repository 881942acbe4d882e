"""A TEXT/CHAT reply as it is charged: to the token, from the provider's usage when
it sent one, else from the text with the model's tokenizer (tokens.py), and never
more than the job's hold. The worker prices a finished or interrupted stream with
it, CancelJob the text last saved of a job whose worker is gone."""

from __future__ import annotations

import asyncio
import math

from services.generation.domain import Job, Result, Usage, charged
from services.generation.settings import GenerationSettings
from services.generation.tokens import BYTES_PER_TOKEN, TOKENS_PER_MESSAGE, estimated_usage

TEXT_MIME = "text/plain"


def prompt_texts(job: Job) -> list[str]:
    """What the model reads, message by message."""
    options = job.options
    texts = [options.system_prompt] if options.system_prompt else []
    texts += [turn.content for turn in options.history]
    texts.append(job.prompt)
    return texts


def prompt_estimate(job: Job) -> int:
    """A quick count of the prompt's tokens (no tokenizer) for the running cost a
    stream shows before the provider's own figure arrives."""
    texts = prompt_texts(job)
    size = sum(len(text.encode()) for text in texts)
    return math.ceil(size / BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE * (len(texts) + 1)


def running_cost(settings: GenerationSettings, job: Job, prompt_tokens: int, tokens: int) -> int:
    """What the job costs so far, `tokens` completion tokens into its reply."""
    _, model = settings.catalogue.resolve(job.kind, job.provider, job.model)
    total = prompt_tokens + tokens
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=tokens, total_tokens=total)
    return charged(job.estimate, settings.prices.actual(job.kind, model, usage))


async def priced_reply(
    settings: GenerationSettings, job: Job, text: str, usage: Usage | None
) -> tuple[Result, int]:
    """The job's result for `text` and its price in credits; `usage` None (the
    provider sent none) counts the tokens from the texts, off the event loop."""
    estimated = usage is None
    if usage is None:
        usage = await asyncio.to_thread(estimated_usage, job.model, prompt_texts(job), text)
    _, model = settings.catalogue.resolve(job.kind, job.provider, job.model)
    result = Result(text=text, mime_type=TEXT_MIME, usage=usage, usage_estimated=estimated)
    return result, charged(job.estimate, settings.prices.actual(job.kind, model, usage))
