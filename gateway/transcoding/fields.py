"""Finding fields of a message by their dotted proto-name paths, and the few facts
about field types the transcoder and the OpenAPI generator both need."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

FIELD_MASK = "google.protobuf.FieldMask"
TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"
# Well-known messages whose JSON form is a single scalar: they act as leaves in
# query parameters and as strings/numbers in schemas.
WRAPPERS = {
    "google.protobuf.DoubleValue": FieldDescriptor.TYPE_DOUBLE,
    "google.protobuf.FloatValue": FieldDescriptor.TYPE_FLOAT,
    "google.protobuf.Int64Value": FieldDescriptor.TYPE_INT64,
    "google.protobuf.UInt64Value": FieldDescriptor.TYPE_UINT64,
    "google.protobuf.Int32Value": FieldDescriptor.TYPE_INT32,
    "google.protobuf.UInt32Value": FieldDescriptor.TYPE_UINT32,
    "google.protobuf.BoolValue": FieldDescriptor.TYPE_BOOL,
    "google.protobuf.StringValue": FieldDescriptor.TYPE_STRING,
    "google.protobuf.BytesValue": FieldDescriptor.TYPE_BYTES,
}
SCALAR_MESSAGES = frozenset({FIELD_MASK, TIMESTAMP, DURATION, *WRAPPERS})


class FieldPathError(ValueError):
    """A dotted path names no field, or goes through something that is not a message."""


def is_message(field: FieldDescriptor) -> bool:
    return field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)


def message_of(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    if field.message_type is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return field.message_type


def message_name(field: FieldDescriptor) -> str:
    """The full name of a message field's type; "" for other fields."""
    return field.message_type.full_name if field.message_type is not None else ""


def enum_of(field: FieldDescriptor) -> EnumDescriptor:
    if field.enum_type is None:
        raise TypeError(f"{field.full_name} is not an enum field")
    return field.enum_type


def is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def is_map(field: FieldDescriptor) -> bool:
    return (
        is_message(field) and is_repeated(field) and bool(message_of(field).GetOptions().map_entry)
    )


def is_scalar_like(field: FieldDescriptor) -> bool:
    """A field whose JSON value is a string, number or bool (a scalar, an enum, or a
    well-known message with a scalar JSON form)."""
    return not is_message(field) or message_name(field) in SCALAR_MESSAGES


def resolve(message: Descriptor, path: str) -> tuple[FieldDescriptor, ...]:
    """The fields along `path` ("book.author.name"), outermost first. Every field but
    the last is a singular message."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for name in path.split("."):
        if current is None:
            raise FieldPathError(f"{path!r}: {fields[-1].name!r} is not a message")
        field = current.fields_by_name.get(name)
        if field is None:
            raise FieldPathError(f"{path!r}: {current.full_name} has no field {name!r}")
        if fields and is_repeated(fields[-1]):
            raise FieldPathError(f"{path!r}: {fields[-1].name!r} is repeated")
        fields.append(field)
        current = field.message_type if is_message(field) and not is_map(field) else None
    return tuple(fields)
