"""`google.protobuf.Timestamp` ⇄ aware UTC `datetime`, for the proto mapping in every
service's api.py and for events:

    return wallet_pb2.Hold(id=hold.id, expires_at=timestamp(hold.expires_at), ...)
    expires_at = to_datetime(request.expires_at)            # aware, UTC

Every time klik handles is UTC: a naive datetime (SQLite hands them back; see
`kit.db.as_utc`) is read as UTC, as `Timestamp.FromDatetime` does."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["optional_timestamp", "timestamp", "to_datetime"]


def timestamp(value: datetime) -> Timestamp:
    """`value` as a Timestamp (naive means UTC)."""
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def optional_timestamp(value: datetime | None) -> Timestamp | None:
    """`timestamp(value)`, or None (the field left unset) for None."""
    return None if value is None else timestamp(value)


def to_datetime(stamp: Timestamp) -> datetime:
    """The Timestamp as an aware UTC datetime (an unset one is the epoch: check
    `HasField` first where the field is optional)."""
    return stamp.ToDatetime(tzinfo=UTC)
