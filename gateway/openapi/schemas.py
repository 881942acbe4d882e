"""JSON Schemas (OpenAPI 3.1) of messages, as protobuf's JSON mapping writes them:
64-bit integers are strings (format int64/uint64), enums their value names,
Timestamp an RFC 3339 date-time string, Duration a string such as "1.5s", FieldMask a
comma-separated string, wrappers their scalar, repeated fields arrays and maps
objects. Messages become components named by their full name; well-known types are
inlined. A field's `google.api.field_behavior` marks it `required` (REQUIRED) or
`readOnly` (OUTPUT_ONLY: the server sets it, a client never sends it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.transcoding import fields

Schema = dict[str, Any]
# protoc's stubs type extensions as plain FieldDescriptors, which Extensions[] refuses.
_FIELD_BEHAVIOR: Any = field_behavior_pb2.field_behavior


def behaviors(field: FieldDescriptor) -> frozenset[int]:
    """The field's `google.api.field_behavior` values (FieldBehavior numbers)."""
    found: Any = field.GetOptions().Extensions[_FIELD_BEHAVIOR]
    return frozenset(found)


def is_required(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in behaviors(field)


COMPONENTS = "#/components/schemas/"

_INT64: Schema = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
_UINT64: Schema = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
_INT32: Schema = {"type": "integer", "format": "int32"}
_UINT32: Schema = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
_T = FieldDescriptor
SCALARS: Mapping[int, Schema] = {
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT64: _INT64,
    _T.TYPE_SINT64: _INT64,
    _T.TYPE_SFIXED64: _INT64,
    _T.TYPE_UINT64: _UINT64,
    _T.TYPE_FIXED64: _UINT64,
    _T.TYPE_INT32: _INT32,
    _T.TYPE_SINT32: _INT32,
    _T.TYPE_SFIXED32: _INT32,
    _T.TYPE_UINT32: _UINT32,
    _T.TYPE_FIXED32: _UINT32,
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}
WELL_KNOWN: Mapping[str, Schema] = {
    fields.TIMESTAMP: {"type": "string", "format": "date-time"},
    fields.DURATION: {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    fields.FIELD_MASK: {
        "type": "string",
        "description": "Comma-separated field paths.",
    },
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    **{name: SCALARS[kind] for name, kind in fields.WRAPPERS.items()},
}


class Schemas:
    """Collects the component schemas of every message and enum it is asked about
    (and those they reach)."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.comments = comments
        self.components: dict[str, Schema] = {}

    def message(self, message: Descriptor) -> Schema:
        """A reference to the message's component (inline for well-known types)."""
        known = WELL_KNOWN.get(message.full_name)
        if known is not None:
            return dict(known)
        if message.full_name not in self.components:
            self.components[message.full_name] = {}  # placeholder: recursion stops here
            self.components[message.full_name] = self.object(message)
        return {"$ref": COMPONENTS + message.full_name}

    def object(self, message: Descriptor, *, leave_out: frozenset[str] = frozenset()) -> Schema:
        """The message as an object schema, optionally without some top-level fields
        (those a route binds from the path)."""
        included = [f for f in message.fields if f.name not in leave_out]
        schema: Schema = {
            "type": "object",
            "properties": {f.name: self.field(f) for f in included},
            "additionalProperties": False,
        }
        required = [f.name for f in included if is_required(f)]
        if required:
            schema["required"] = required
        return self._described(schema, message.full_name)

    def field(self, field: FieldDescriptor) -> Schema:
        if fields.is_map(field):
            value = fields.message_of(field).fields_by_name["value"]
            schema: Schema = {"type": "object", "additionalProperties": self.single(value)}
        elif fields.is_repeated(field):
            schema = {"type": "array", "items": self.single(field)}
        else:
            schema = self.single(field)
        if field_behavior_pb2.OUTPUT_ONLY in behaviors(field):
            schema["readOnly"] = True
        return self._described(schema, field.full_name)

    def single(self, field: FieldDescriptor) -> Schema:
        """One value of the field (an element, for a repeated field)."""
        if fields.is_message(field):
            return self.message(fields.message_of(field))
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(fields.enum_of(field))
        return dict(SCALARS[field.type])

    def enum(self, enum: EnumDescriptor) -> Schema:
        if enum.full_name not in self.components:
            schema: Schema = {"type": "string", "enum": [v.name for v in enum.values]}
            self.components[enum.full_name] = self._described(schema, enum.full_name)
        return {"$ref": COMPONENTS + enum.full_name}

    def _described(self, schema: Schema, full_name: str) -> Schema:
        comment = self.comments.get(full_name)
        if comment:
            schema["description"] = comment
        return schema
