"""The gRPC response into the HTTP body.

JSON is protobuf's JSON mapping with proto field names, and every field without
presence is printed even when it holds its default (grpc-gateway's default
`EmitUnpopulated: true`): clients always see the same keys — `"next_page_token": ""`
on the last page, `"held": "0"` — instead of having to know proto3 defaults. Fields
with presence (messages, `optional` scalars) are printed only when set. 64-bit
integers are JSON strings, as the mapping says: a JavaScript number would silently
lose precision above 2^53."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.transcoding import fields

if TYPE_CHECKING:  # routes builds stream shapes, which encode with to_json_value
    from gateway.transcoding.routes import Route


def to_json_value(message: Message) -> Any:
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def encode_response(route: Route, reply: Message) -> bytes:
    if not route.response_body:
        value = to_json_value(reply)
    else:
        field = route.method.output_type.fields_by_name[route.response_body]
        if fields.is_message(field) and not fields.is_repeated(field):
            # An unset message field still answers with its (default) object.
            value = to_json_value(getattr(reply, field.name))
        else:
            value = to_json_value(reply).get(field.name)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
