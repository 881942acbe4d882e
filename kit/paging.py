"""List paging as API.md prescribes (AIP-158): `page_size` defaults to 20 and is clamped
to 100; `page_token` is an opaque cursor that only the RPC which issued it accepts.

    size = page_size(request.page_size)
    position = decode_cursor("wallet.ListTransactions", request.page_token)  # None: first page
    ...
    next_token = encode_cursor("wallet.ListTransactions", {"seq": last_seq}) if more else ""

A cursor is base64url JSON naming its RPC and a position (the sort key of the last
row served). It is not signed: the position only ever selects within the caller's
own rows, which the query scopes by itself, so a forged cursor reveals nothing.

The two positions klik lists by have typed cursors, which check the position's shape
too (INVALID_PAGE_TOKEN for anything else):

    TRANSACTIONS = SeqCursor("wallet.ListTransactions")       # newest first, by `seq`
    before = TRANSACTIONS.decode(request.page_token)          # int | None
    next_token = TRANSACTIONS.encode(page.next_before)        # "" for None: no more

    POSTS = TimeCursor("content.ListPosts")                   # by (time, id)
    after = POSTS.decode(request.page_token)                  # (aware datetime, id) | None
    next_token = POSTS.encode((last.created_at, last.id) if more else None)"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from kit.errors import InvalidArgument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "SeqCursor",
    "TimeCursor",
    "decode_cursor",
    "encode_cursor",
    "invalid_page_token",
    "page_size",
]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

Position = dict[str, str | int]


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """0 (unset) means `default`; more than `maximum` is clamped; negative is refused."""
    if requested < 0:
        raise InvalidArgument(
            "INVALID_ARGUMENT", "page_size must not be negative", details={"field": "page_size"}
        )
    return min(requested or default, maximum)


def encode_cursor(rpc: str, position: Mapping[str, str | int]) -> str:
    raw = json.dumps({"r": rpc, "p": dict(position)}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(rpc: str, token: str) -> Position | None:
    """The position in `token`, None for "" (the first page). INVALID_ARGUMENT
    `INVALID_PAGE_TOKEN` for anything `encode_cursor(rpc, …)` did not make."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid_page_token() from None
    if not isinstance(data, dict) or data.get("r") != rpc or not isinstance(data.get("p"), dict):
        raise invalid_page_token()
    position: Position = data["p"]
    if not all(isinstance(k, str) and _plausible(v) for k, v in position.items()):
        raise invalid_page_token()
    return position


def _plausible(value: object) -> bool:
    """A string, or an integer a database column can hold (a forged 10**20 would
    overflow SQLite's driver: a 500 instead of INVALID_PAGE_TOKEN)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str)


def invalid_page_token() -> InvalidArgument:
    """INVALID_ARGUMENT `INVALID_PAGE_TOKEN`: the refusal of a token this RPC did not issue."""
    return InvalidArgument("INVALID_PAGE_TOKEN", "page_token was not issued by this RPC")


@dataclass(frozen=True)
class SeqCursor:
    """A cursor holding one integer sort key (a row's `seq`) under `field`."""

    rpc: str
    field: str = "seq"

    def encode(self, seq: int | None) -> str:
        """The token for the page after `seq`; "" (no more pages) for None."""
        return "" if seq is None else encode_cursor(self.rpc, {self.field: seq})

    def decode(self, token: str) -> int | None:
        """The `seq` in `token`, None for "" (the first page)."""
        position = decode_cursor(self.rpc, token)
        if position is None:
            return None
        seq = position.get(self.field)
        if not isinstance(seq, int):
            raise invalid_page_token()
        return seq


@dataclass(frozen=True)
class TimeCursor:
    """A cursor holding a (time, id) sort key: an aware datetime under `time_field`
    (ISO 8601) and a row id under `id_field`, the id breaking ties between rows of
    the same instant."""

    rpc: str
    time_field: str = "t"
    id_field: str = "id"

    def encode(self, after: tuple[datetime, str] | None) -> str:
        """The token for the page after `after`; "" (no more pages) for None."""
        if after is None:
            return ""
        when, row_id = after
        if when.tzinfo is None:
            raise ValueError("a cursor's time is aware")
        return encode_cursor(self.rpc, {self.time_field: when.isoformat(), self.id_field: row_id})

    def decode(self, token: str) -> tuple[datetime, str] | None:
        """The (aware time, id) in `token`, None for "" (the first page)."""
        position = decode_cursor(self.rpc, token)
        if position is None:
            return None
        when, row_id = position.get(self.time_field), position.get(self.id_field)
        if not isinstance(when, str) or not isinstance(row_id, str):
            raise invalid_page_token()
        try:
            parsed = datetime.fromisoformat(when)
        except ValueError:
            raise invalid_page_token() from None
        if parsed.tzinfo is None:
            raise invalid_page_token()
        return parsed, row_id
