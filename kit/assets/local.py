"""The local-directory asset store (the embedded stack's default: `var/assets`)."""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from kit.assets.keys import check_key, guess_mime_type
from kit.assets.store import AssetExists, AssetInfo, exactly

CHUNK = 256 * 1024


class LocalAssetStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, mime_type: str) -> AssetInfo:
        target = self.path(key)
        written = await asyncio.to_thread(_write_atomically, target, data)
        return AssetInfo(key=key, size=len(data), mime_type=mime_type, etag=_etag(written))

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        mime_type: str,
        *,
        size: int | None = None,
        exclusive: bool = False,
    ) -> AssetInfo:
        """Chunks go to a temporary file beside the target, which is renamed (or, when
        `exclusive`, hard-linked: that fails if the target exists) only once all
        bytes arrived; on any failure the temporary file is removed."""
        target = self.path(key)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        fd, temporary = await asyncio.to_thread(tempfile.mkstemp, dir=target.parent, prefix=".put-")
        handle = os.fdopen(fd, "wb")
        try:
            try:
                os.fchmod(handle.fileno(), 0o644)
                async for chunk in exactly(chunks, size):
                    await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(_flush, handle)
            finally:
                handle.close()
            st = await asyncio.to_thread(_commit, Path(temporary), target, exclusive)
        finally:
            await asyncio.to_thread(Path(temporary).unlink, missing_ok=True)
        return AssetInfo(key=key, size=st.st_size, mime_type=mime_type, etag=_etag(st))

    async def stat(self, key: str) -> AssetInfo | None:
        return await asyncio.to_thread(self._stat, key)

    def _stat(self, key: str) -> AssetInfo | None:
        try:
            st = self.path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):  # a key prefix (`<job_id>`) is a directory here
            return None
        return AssetInfo(key=key, size=st.st_size, mime_type=guess_mime_type(key), etag=_etag(st))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if start < 0 or (end is not None and end < 0):
            raise ValueError(f"bad range [{start}, {end})")
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


def _etag(st: os.stat_result) -> str:
    # Size, mtime and inode change whenever the file is replaced (a new file renamed
    # over it), so `put` and a later `stat` agree without hashing the content.
    return f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"


def _flush(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _commit(temporary: Path, target: Path, exclusive: bool) -> os.stat_result:
    """Put the complete temporary file in place; the caller removes the temporary name."""
    if not exclusive:
        os.replace(temporary, target)
        return target.stat()
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise AssetExists(f"an asset is stored under {target.name!r} already") from None
    return target.stat()


def _write_atomically(target: Path, data: bytes) -> os.stat_result:
    """Write a temporary file beside the target and rename it over: readers see the
    old file or the new one, never a part. Returns the new file's stat."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".put-")
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes it 0600: let a gateway running as another user read it.
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            written = os.fstat(handle.fileno())
        os.replace(temporary, target)
        return written
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
