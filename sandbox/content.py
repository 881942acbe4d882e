"""Deterministic sandbox output, with no I/O: the same request always gets the same
reply. Tokens are counted as whitespace-separated words, honestly: the usage the
sandbox reports is exactly what its text contains."""

from __future__ import annotations

import hashlib
import re

from sandbox.faults import strip_markers

# The sandbox's vocabulary: replies are words drawn from it by the prompt's hash.
_VOCABULARY = """
amber bright calm clear cloud coral dawn deep drift echo ember field frost gentle
glade golden harbor hollow ivory lantern light linen maple meadow mellow mist
morning north ocean olive pale pebble pine quiet rain river rose sage shadow
silver slate soft spark spring stone summer swift thistle tide timber valley
velvet warm willow winter wren
"""
_WORDS = tuple(_VOCABULARY.split())
# Speech pace of the sandbox's avatars: 150 words a minute.
WORDS_PER_SECOND = 2.5


def tokens(text: str) -> int:
    return len(text.split())


def pieces(text: str) -> list[str]:
    """`text` cut into its tokens as a stream sends them: each word with the space
    before it, so they join back into `text` and there are `tokens(text)` of them."""
    return re.findall(r"\s*\S+", text)


def digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def reply(
    model: str, prompt: str, max_tokens: int | None, length: int | None = None
) -> tuple[str, str]:
    """The reply to `prompt` and its finish reason ("length" when `max_tokens` words
    cut it short); `length` words long when given (the `words=` marker)."""
    seed = digest(model, prompt)
    quoted = " ".join(strip_markers(prompt).split()[:8])
    # Whitespace-separated from the start: the cut at max_tokens counts real words.
    words = (f"Sandbox reply to “{quoted}”:" if quoted else "Sandbox reply:").split()
    if length is None:
        words += [_WORDS[b % len(_WORDS)] for b in seed[: 8 + seed[0] % 17]]
    else:
        words += [_WORDS[(seed[i % len(seed)] + i) % len(_WORDS)] for i in range(length)]
        words = words[:length]
    if max_tokens is not None and max_tokens < len(words):
        return " ".join(words[:max_tokens]), "length"
    return " ".join(words) + ".", "stop"


def video_seconds(script: str) -> float:
    """How long the sandbox's avatar takes to say `script`."""
    return round(max(1.0, tokens(strip_markers(script)) / WORDS_PER_SECOND), 3)
