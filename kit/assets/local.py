"""The local-directory asset store (the embedded stack's default: `var/assets`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from kit.assets.keys import check_key, guess_mime_type
from kit.assets.store import AssetInfo

CHUNK = 256 * 1024


class LocalAssetStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, mime_type: str) -> AssetInfo:
        target = self.path(key)
        await asyncio.to_thread(_write_atomically, target, data)
        return AssetInfo(key=key, size=len(data), mime_type=mime_type, etag=_etag(data))

    async def stat(self, key: str) -> AssetInfo | None:
        return await asyncio.to_thread(self._stat, key)

    def _stat(self, key: str) -> AssetInfo | None:
        try:
            st = self.path(key).stat()
        except FileNotFoundError:
            return None
        # Size and mtime change whenever the file is replaced (atomic rename).
        etag = f"{st.st_size:x}-{st.st_mtime_ns:x}"
        return AssetInfo(key=key, size=st.st_size, mime_type=guess_mime_type(key), etag=etag)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self.path(key), "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                size = CHUNK if remaining is None else min(CHUNK, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def close(self) -> None:
        return None


def _etag(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".put-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
