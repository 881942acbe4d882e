"""The interface every asset store implements."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class AssetInfo:
    key: str
    size: int  # bytes
    mime_type: str
    etag: str  # changes whenever the content does (quoted form not included)


class AssetStoreError(RuntimeError):
    """The store's backend failed (unreachable, refused, out of retries); a missing
    file is not an error (`stat` returns None, `read` raises FileNotFoundError)."""


class AssetExists(AssetStoreError):
    """`put_stream(..., exclusive=True)` found a file under the key already."""


class AssetStore(Protocol):
    """Put once by generation, read many times by the gateway. Writes are atomic: a
    reader sees the whole old file, the whole new one, or none."""

    async def put(self, key: str, data: bytes, mime_type: str) -> AssetInfo: ...

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        mime_type: str,
        *,
        size: int | None = None,
        exclusive: bool = False,
    ) -> AssetInfo:
        """Store the bytes of `chunks` without holding them all in memory: exactly
        `size` of them when it is given (an upload's declared size), whatever they
        come to when None (a provider's download, bounded by its reader). Nothing is
        stored when `chunks` raises (its exception propagates) or yields another
        number of bytes than `size` (ValueError). `exclusive`: AssetExists, and
        nothing changed, when the key already holds a file."""
        ...

    async def stat(self, key: str) -> AssetInfo | None:
        """The file's metadata, or None when there is no such file."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the file (end None: to the end), in chunks; none
        when start is at or past the end. FileNotFoundError when there is no file."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the file; no error when it does not exist."""
        ...

    async def close(self) -> None: ...


async def exactly(chunks: AsyncIterable[bytes], size: int | None) -> AsyncIterator[bytes]:
    """`chunks`, refused (ValueError) as soon as they pass `size` bytes or end short:
    what every `put_stream` stores (size None: all of them, as they come)."""
    if size is None:
        async for chunk in chunks:
            yield chunk
        return
    written = 0
    async for chunk in chunks:
        written += len(chunk)
        if written > size:
            raise ValueError(f"more than the {size} bytes announced")
        yield chunk
    if written != size:
        raise ValueError(f"{written} bytes, not the {size} announced")
