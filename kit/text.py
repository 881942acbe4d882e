"""Requests whose text PostgreSQL could not store are refused before any handler.

PostgreSQL `text` cannot hold U+0000, so a NUL in any string field would surface as
an INTERNAL error from deep inside a query (and SQLite would store what PostgreSQL
refuses: the two backends would disagree). No field of any klik contract has a use
for it, so the server interceptor checks every request once, here."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from kit.errors import InvalidArgument

NUL = "\x00"


def nul_field(message: Message, prefix: str = "") -> str | None:
    """The path of the first string field (nested, repeated or map) holding a NUL."""
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            values = value.values() if _is_map(field) else value if _repeated(field) else [value]
            if any(NUL in item for item in values):
                return path
            if _is_map(field) and any(NUL in key for key in value):
                return path
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_map(field):
                if any(NUL in str(key) for key in value):
                    return path
                items = list(value.values())
            else:
                items = list(value) if _repeated(field) else [value]
            for item in items:
                if isinstance(item, Message):
                    found = nul_field(item, path + ".")
                    if found is not None:
                        return found
    return None


def check_request_text(message: object) -> None:
    if isinstance(message, Message):
        field = nul_field(message)
        if field is not None:
            raise InvalidArgument(
                "INVALID_CHARACTERS",
                f"{field} must not contain NUL (U+0000) characters",
                details={"field": field},
            )


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return _repeated(field) and entry is not None and bool(entry.GetOptions().map_entry)
