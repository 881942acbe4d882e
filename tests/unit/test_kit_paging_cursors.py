"""kit.paging's typed cursors: `seq` and (time, id) positions, INVALID_PAGE_TOKEN for
anything else, and tokens identical to the ones the services issued before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kit.errors import InvalidArgument
from kit.paging import SeqCursor, TimeCursor, encode_cursor, invalid_page_token

SEQ = SeqCursor("svc.List")
TIME = TimeCursor("svc.Feed")
WHEN = datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=UTC)


def test_seq_round_trips() -> None:
    assert SEQ.decode(SEQ.encode(42)) == 42
    assert SEQ.encode(None) == ""
    assert SEQ.decode("") is None
    assert SEQ.encode(42) == encode_cursor("svc.List", {"seq": 42}), "same tokens as before"
    assert (
        SeqCursor("svc.List", field="before").decode(encode_cursor("svc.List", {"before": 7})) == 7
    )


def test_time_round_trips() -> None:
    assert TIME.decode(TIME.encode((WHEN, "row-1"))) == (WHEN, "row-1")
    assert TIME.encode(None) == ""
    assert TIME.decode("") is None
    assert TIME.encode((WHEN, "r")) == encode_cursor("svc.Feed", {"t": WHEN.isoformat(), "id": "r"})
    users = TimeCursor("auth.ListUsers", time_field="created_at")
    assert users.encode((WHEN, "u")) == encode_cursor(
        "auth.ListUsers", {"created_at": WHEN.isoformat(), "id": "u"}
    )
    other_zone = WHEN.astimezone(timezone(timedelta(hours=-5)))
    assert TIME.decode(TIME.encode((other_zone, "r"))) == (WHEN, "r")
    with pytest.raises(ValueError):
        TIME.encode((datetime(2026, 1, 1), "naive"))


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        encode_cursor("svc.Other", {"seq": 1}),
        encode_cursor("svc.List", {}),
        encode_cursor("svc.List", {"seq": "1"}),
        encode_cursor("svc.List", {"t": WHEN.isoformat(), "id": "x"}),
    ],
)
def test_seq_refuses_anything_else(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        SEQ.decode(token)
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize(
    "token",
    [
        encode_cursor("svc.List", {"t": WHEN.isoformat(), "id": "x"}),
        encode_cursor("svc.Feed", {"seq": 1}),
        encode_cursor("svc.Feed", {"t": WHEN.isoformat()}),
        encode_cursor("svc.Feed", {"t": WHEN.isoformat(), "id": 5}),
        encode_cursor("svc.Feed", {"t": "yesterday", "id": "x"}),
        encode_cursor("svc.Feed", {"t": "2026-01-01T00:00:00", "id": "x"}),  # naive
    ],
)
def test_time_refuses_anything_else(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        TIME.decode(token)
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


def test_the_refusal() -> None:
    error = invalid_page_token()
    assert (error.reason, error.message) == (
        "INVALID_PAGE_TOKEN",
        "page_token was not issued by this RPC",
    )
