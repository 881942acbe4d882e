"""List paging as API.md prescribes (AIP-158): `page_size` defaults to 20 and is clamped
to 100; `page_token` is an opaque cursor that only the RPC which issued it accepts.

    size = page_size(request.page_size)
    position = decode_cursor("wallet.ListTransactions", request.page_token)  # None: first page
    ...
    next_token = encode_cursor("wallet.ListTransactions", {"seq": last_seq}) if more else ""

A cursor is base64url JSON naming its RPC and a position (the sort key of the last
row served). It is not signed: the position only ever selects within the caller's
own rows, which the query scopes by itself, so a forged cursor reveals nothing."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from kit.errors import InvalidArgument

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "decode_cursor", "encode_cursor", "page_size"]

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
        raise _invalid() from None
    if not isinstance(data, dict) or data.get("r") != rpc or not isinstance(data.get("p"), dict):
        raise _invalid()
    position: Position = data["p"]
    if not all(isinstance(k, str) and _plausible(v) for k, v in position.items()):
        raise _invalid()
    return position


def _plausible(value: object) -> bool:
    """A string, or an integer a database column can hold (a forged 10**20 would
    overflow SQLite's driver: a 500 instead of INVALID_PAGE_TOKEN)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str)


def _invalid() -> InvalidArgument:
    return InvalidArgument("INVALID_PAGE_TOKEN", "page_token was not issued by this RPC")
