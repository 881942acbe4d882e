"""kit.paging: cursors round-trip, and anything else is INVALID_PAGE_TOKEN, never a 500."""

from __future__ import annotations

import base64
import json

import pytest

from kit.errors import InvalidArgument
from kit.paging import decode_cursor, encode_cursor, page_size


def forged(position: object, rpc: str = "svc.List") -> str:
    raw = json.dumps({"r": rpc, "p": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_round_trips_for_its_own_rpc_only() -> None:
    token = encode_cursor("svc.List", {"seq": 42, "at": "2026-01-01T00:00:00Z"})
    assert decode_cursor("svc.List", token) == {"seq": 42, "at": "2026-01-01T00:00:00Z"}
    assert decode_cursor("svc.List", "") is None
    with pytest.raises(InvalidArgument):
        decode_cursor("svc.Other", token)


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        forged([1]),
        forged({"seq": True}),
        forged({"seq": 1.5}),
        forged({"seq": None}),
        forged({"seq": 10**20}),  # would overflow SQLite's driver
        forged({"seq": -(2**63) - 1}),
    ],
)
def test_anything_else_is_an_invalid_page_token(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_cursor("svc.List", token)
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


def test_largest_64_bit_position_is_accepted() -> None:
    assert decode_cursor("svc.List", forged({"seq": 2**63 - 1})) == {"seq": 2**63 - 1}


def test_page_size_defaults_clamps_and_refuses_negatives() -> None:
    assert page_size(0) == 20
    assert page_size(500) == 100
    assert page_size(7) == 7
    with pytest.raises(InvalidArgument):
        page_size(-1)
