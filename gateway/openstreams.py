"""The open streams of each user on this replica, at most so many each: the cap both
`GET /v1/events` (gateway.eventhub) and the streaming RPC routes
(gateway.transcoding.streamcall) hold their streams under, each with its own limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

S = TypeVar("S")


class TooManyStreams(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} streams")
        self.limit = limit


class OpenStreams(Generic[S]):
    """Streams by key (a user id), at most `max_per_key` under each key."""

    def __init__(self, max_per_key: int) -> None:
        self.max_per_key = max_per_key
        self._by_key: dict[str, set[S]] = {}

    def add(self, key: str, stream: S) -> None:
        """Raises TooManyStreams when `key` holds its limit already."""
        streams = self._by_key.setdefault(key, set())
        if len(streams) >= self.max_per_key:
            raise TooManyStreams(self.max_per_key)
        streams.add(stream)

    def remove(self, key: str, stream: S) -> bool:
        """Whether `stream` was open (removing it twice is harmless)."""
        streams = self._by_key.get(key)
        if streams is None or stream not in streams:
            return False
        streams.discard(stream)
        if not streams:
            del self._by_key[key]
        return True

    def of(self, key: str) -> list[S]:
        return list(self._by_key.get(key, ()))

    def __iter__(self) -> Iterator[S]:
        return iter([stream for streams in self._by_key.values() for stream in streams])
