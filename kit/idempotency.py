"""Idempotency keys, the same in every service: how long a key may be, what a request
is bound to (its fingerprint), and the refusal when a key comes back with another
request.

    key = check_key(request.idempotency_key, required=True)   # INVALID_ARGUMENT if not
    print_ = message_fingerprint(request)                     # the request but its key
    ...
    stored = <the row this key made earlier, if any>
    if stored is not None:
        check_replay(stored.fingerprint, print_, "transfer")  # ABORTED IDEMPOTENCY_KEY_REUSED
        return <the stored result>                            # same key, same request

A fingerprint is a SHA-256 hex digest (64 characters: a `String(64)` column). Two
ways to take one, for two kinds of request: `fingerprint(operation, fields)` over the
fields that shape the effect (canonical JSON), and `message_fingerprint(message)` over
a whole proto request minus its key. Each gives the digests the services stored
before it existed, so keys recorded then still replay."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence

from google.protobuf.message import Message

from kit.errors import Aborted, InvalidArgument

__all__ = [
    "FIELD",
    "KEY_REUSED",
    "MAX_KEY_LENGTH",
    "MIN_RETENTION_HOURS",
    "check_key",
    "check_replay",
    "fingerprint",
    "key_reused",
    "message_fingerprint",
]

FIELD = "idempotency_key"
MAX_KEY_LENGTH = 200
KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
# API.md: a key replays its request for at least this long; whatever a retry with
# the key depends on must be kept at least as long.
MIN_RETENTION_HOURS = 24.0

FieldValue = str | int | float | bool | None


def check_key(
    key: str, *, required: bool = False, field: str = FIELD, max_length: int = MAX_KEY_LENGTH
) -> str:
    """`key`, unless it is longer than `max_length` characters or, when `required`,
    empty: INVALID_ARGUMENT `INVALID_ARGUMENT` with `details.field`. An empty key
    that is not required means "no idempotency asked for"."""
    if required and not key:
        raise InvalidArgument("INVALID_ARGUMENT", f"{field} is required", details={"field": field})
    if len(key) > max_length:
        raise InvalidArgument(
            "INVALID_ARGUMENT",
            f"{field} is longer than {max_length} characters",
            details={"field": field},
        )
    return key


def fingerprint(operation: str, fields: Mapping[str, FieldValue] | Sequence[FieldValue]) -> str:
    """What makes two requests "the same request" under one key: a hash of the
    operation and every field that shapes its effect, as canonical JSON. Fields by
    name (a mapping: the order they are given in does not matter) or by position (a
    sequence: the order is part of the request):

        fingerprint("transfer", {"to": to, "amount": amount})
        fingerprint("SendMessage", (chat_id, content))
    """
    if isinstance(fields, Mapping):
        if "operation" in fields:
            raise ValueError('"operation" is the fingerprint\'s own field')
        canonical = json.dumps(
            {"operation": operation, **fields}, sort_keys=True, separators=(",", ":")
        )
    elif isinstance(fields, str | bytes):
        raise TypeError("fields are a mapping or a sequence of values, not one string")
    else:
        canonical = json.dumps([operation, *fields], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def message_fingerprint(message: Message, *, ignore: Iterable[str] = (FIELD,)) -> str:
    """A hash of the whole proto `message` (deterministic serialisation) with the
    fields named in `ignore` (the key itself, by default) cleared. The caller's
    message is not changed."""
    body = type(message)()
    body.CopyFrom(message)
    for name in ignore:
        body.ClearField(name)
    return hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()


def key_reused(operation: str = "") -> Aborted:
    """ABORTED `IDEMPOTENCY_KEY_REUSED`: the key was used for a different request."""
    what = f"{operation} request" if operation else "request"
    return Aborted(KEY_REUSED, f"this {FIELD} was used with a different {what}")


def check_replay(stored: str, offered: str, operation: str = "") -> None:
    """Nothing when the stored fingerprint is the offered one (a replay: serve the
    stored result); `key_reused(operation)` raised otherwise."""
    if stored != offered:
        raise key_reused(operation)
