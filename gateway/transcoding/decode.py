"""An HTTP request (path variables, query, JSON body) into the gRPC request message.

Body first, then query parameters, then path variables, so a path variable always
wins over the same field in a `body: "*"` body. JSON is protobuf's JSON mapping
(`json_format`): proto field names or their lowerCamelCase JSON names, int64 as a
number or a string, enums by name or number. Unknown body fields are refused — see
README § Gateway for why the gateway is stricter than grpc-gateway here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from gateway.errors import GatewayError, invalid_field
from gateway.transcoding import fields
from gateway.transcoding.query import query_values
from gateway.transcoding.routes import Route


def decode_request(
    route: Route,
    params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
    content_type: str = "",
) -> Message:
    message = route.request_class()
    if route.raw_body:
        target: Any = message if route.raw_body == "*" else getattr(message, route.raw_body)
        target.content_type = content_type
        target.data = body
        _parse_into(query_values(route, query), message, "query")
        for path, value in params.items():
            _set_path_field(message, path, value)
        return message
    document = parse_json(body) if route.body else None
    if route.body == "*":
        if not isinstance(document, dict):
            raise invalid_field("the request body must be a JSON object")
        _parse_into(document, message, "body")
    elif route.body:
        _parse_into({route.body: document}, message, "body")
    _parse_into(query_values(route, query), message, "query")
    for path, value in params.items():
        _set_path_field(message, path, value)
    if route.mask_field and not message.HasField(route.mask_field):
        _fill_mask(route, message, document)
    return message


def _fill_mask(route: Route, message: Message, document: Any) -> None:
    """PATCH without an explicit mask: the body's keys are the fields to change. A
    body naming no field is refused rather than sent as an empty mask, which services
    read as "every field" (AIP-134) — the opposite of what an empty PATCH means."""
    body_field = route.method.input_type.fields_by_name[route.body]
    if not fields.is_message(body_field) or not isinstance(document, dict):
        return
    paths = mask_paths(fields.message_of(body_field), document)
    if not paths:
        raise invalid_field("the body names no field to update")
    getattr(message, route.mask_field).paths.extend(paths)


def parse_json(body: bytes) -> Any:
    """The body's JSON value; an empty body is `{}` (`POST …:cancel` with no body)."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise GatewayError(
            "INVALID_ARGUMENT",
            f"the request body is not UTF-8 (byte {error.start})",
            code="MALFORMED_JSON",
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except _NotJson as error:
        raise GatewayError(
            "INVALID_ARGUMENT", f"malformed JSON: {error} is not JSON", code="MALFORMED_JSON"
        ) from None
    except json.JSONDecodeError as error:
        raise GatewayError(
            "INVALID_ARGUMENT",
            f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            code="MALFORMED_JSON",
            details={"line": error.lineno, "column": error.colno},
        ) from None
    except RecursionError:
        raise GatewayError(
            "INVALID_ARGUMENT", "malformed JSON: nested too deeply", code="MALFORMED_JSON"
        ) from None


class _NotJson(ValueError):
    """NaN / Infinity: Python's decoder accepts them, JSON does not."""


def _reject_constant(name: str) -> Any:
    raise _NotJson(name)


def _parse_into(document: dict[str, Any], message: Message, where: str) -> None:
    if not document:
        return
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as error:
        raise invalid_field(f"invalid {where}: {_first_line(str(error))}") from None
    except RecursionError:
        raise invalid_field(f"invalid {where}: nested too deeply") from None


def _set_path_field(message: Message, path: str, value: str) -> None:
    *parents, leaf = path.split(".")
    target = message
    for name in parents:
        target = getattr(target, name)
    try:
        json_format.ParseDict({leaf: value}, target)
    except json_format.ParseError as error:
        raise invalid_field(f"invalid path parameter {path!r}: {_first_line(str(error))}") from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid value"


def mask_paths(message: Descriptor, document: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The field mask a PATCH body implies: one path per key, descending into nested
    messages given as non-empty objects (`{"a": {"b": 1}}` is `a.b`), never into maps,
    lists or well-known types. Keys may be proto or JSON names."""
    by_json = {f.json_name: f for f in message.fields}
    paths: list[str] = []
    for key, value in document.items():
        field = message.fields_by_name.get(key) or by_json.get(key)
        if field is None:  # ParseDict has refused unknown keys already
            continue
        name = prefix + field.name
        nested = (
            fields.is_message(field)
            and not fields.is_repeated(field)
            and not fields.message_name(field).startswith("google.protobuf.")
            and isinstance(value, dict)
            and value
        )
        if nested:
            paths.extend(mask_paths(fields.message_of(field), value, name + "."))
        else:
            paths.append(name)
    return paths
