"""Asset keys: where a stored file lives, and the last part of its public URL."""

from __future__ import annotations

import mimetypes
import re

# One or more path segments of safe characters; no empty, `.` or `..` segment.
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,3}")

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "text/plain": ".txt",
}


class InvalidAssetKey(ValueError):
    """A key that could escape the store's root or is not one `asset_key` makes."""


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or ".." in key:
        raise InvalidAssetKey(f"not an asset key: {key!r}")
    return key


def asset_key(job_id: str, index: int, mime_type: str) -> str:
    """The key of a job's `index`-th output: deterministic, so a resumed job
    overwrites what a dead worker may have half-stored instead of leaving an orphan."""
    extension = _EXTENSIONS.get(mime_type) or mimetypes.guess_extension(mime_type) or ".bin"
    return check_key(f"{job_id}/{index}{extension}")


def guess_mime_type(key: str) -> str:
    guessed, _ = mimetypes.guess_type(key)
    return guessed or "application/octet-stream"
