"""kit.timestamps: Timestamp ⇄ aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from kit.timestamps import optional_timestamp, timestamp, to_datetime
from klik.wallet.v1 import wallet_pb2


def test_round_trip_keeps_microseconds_and_is_utc() -> None:
    when = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
    stamp = timestamp(when)
    assert isinstance(stamp, Timestamp)
    assert (stamp.seconds, stamp.nanos) == (int(when.timestamp()), 123456000)
    back = to_datetime(stamp)
    assert back == when and back.tzinfo is UTC


def test_other_zones_and_naive_times_mean_the_same_instant() -> None:
    when = datetime(2026, 5, 4, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_datetime(timestamp(when)) == datetime(2026, 5, 4, 3, 0, tzinfo=UTC)
    assert timestamp(datetime(2026, 5, 4, 3, 0)) == timestamp(when), "naive is UTC"


def test_fits_a_message_field_and_none_leaves_it_unset() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    wallet = wallet_pb2.Wallet(user_id="u", updated_at=timestamp(when))
    assert to_datetime(wallet.updated_at) == when
    assert optional_timestamp(None) is None
    assert not wallet_pb2.Wallet(updated_at=optional_timestamp(None)).HasField("updated_at")
    assert optional_timestamp(when) == timestamp(when)
