"""Query parameters into request fields (fields bound neither by the path nor by the
body), as grpc-gateway does: `a.b=1` sets a nested field, a repeated field takes the
parameter once per element (`tag=x&tag=y`), enums take their name (or number),
Timestamp/Duration their JSON string, FieldMask a comma-separated list of paths, and
wrappers their scalar. Unknown parameters are refused (Envoy's default), so a typo
such as `pagesize=5` is a 400, not a silently ignored option."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import FieldDescriptor

from gateway.errors import invalid_field
from gateway.transcoding import fields
from gateway.transcoding.routes import Route

_TRUE = {"true", "1", "t"}
_FALSE = {"false", "0", "f"}


def query_values(route: Route, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The parameters as a nested JSON object ready for `json_format.ParseDict`."""
    grouped: dict[str, list[str]] = {}
    for key, text in items:
        grouped.setdefault(key, []).append(text)
    if grouped and route.body == "*":
        raise invalid_field(
            f"query parameter {next(iter(grouped))!r} is not accepted: "
            "this route takes every field from the body"
        )
    nested: dict[str, Any] = {}
    for key, values in grouped.items():
        chain = _field_chain(route, key)
        leaf = chain[-1]
        if fields.is_repeated(leaf):
            value: Any = [_json_value(key, leaf, v) for v in values]
        elif len(values) > 1:
            raise invalid_field(f"query parameter {key!r} given {len(values)} times")
        else:
            value = _json_value(key, leaf, values[0])
        node = nested
        for field in chain[:-1]:
            node = node.setdefault(field.name, {})
        node[leaf.name] = value
    return nested


def _field_chain(route: Route, key: str) -> tuple[FieldDescriptor, ...]:
    if _bound_elsewhere(route, key):
        raise invalid_field(f"query parameter {key!r} is bound by the path or the body")
    try:
        chain = fields.resolve(route.method.input_type, key)
    except fields.FieldPathError:
        raise invalid_field(f"unknown query parameter {key!r}") from None
    leaf = chain[-1]
    if fields.is_map(leaf) or not fields.is_scalar_like(leaf):
        raise invalid_field(
            f"query parameter {key!r} is a message: set its fields with dotted names"
        )
    return chain


def _bound_elsewhere(route: Route, key: str) -> bool:
    taken = [*route.path_fields, *([route.body] if route.body else [])]
    return any(key == t or key.startswith(t + ".") or t.startswith(key + ".") for t in taken)


def _json_value(key: str, field: FieldDescriptor, text: str) -> Any:
    """The JSON value ParseDict expects for `field`, from the text of a parameter.
    Strings are left for ParseDict to convert (numbers, enums, Timestamp...), so its
    errors name the field; only booleans and field masks need help here."""
    message_name = fields.message_name(field)
    if message_name == fields.FIELD_MASK:
        paths = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return field_mask_pb2.FieldMask(paths=paths).ToJsonString()
        except ValueError:
            raise invalid_field(f"query parameter {key!r}: bad field mask {text!r}") from None
    if field.type == FieldDescriptor.TYPE_BOOL or message_name == "google.protobuf.BoolValue":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise invalid_field(f"query parameter {key!r}: expected true or false, got {text!r}")
    return text
