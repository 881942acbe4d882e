"""The OpenAPI 3.1 document of every transcoded route: paths and operations from the
routes, descriptions from the proto comments, schemas from the descriptors, bearer
security except on RPCs marked `(klik.options.v1.public)`, and a response of its own
for each `(klik.options.v1.reason_status)` an RPC declares. A server-streaming RPC's
200 is a `text/event-stream` whose description lists its events and their schemas
(also in the response's `x-sse-events`: event name -> schema of its `data:`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.errors import HTTP_STATUS, declared_statuses
from gateway.openapi.schemas import COMPONENTS, Schema, Schemas, is_required
from gateway.openapi.streams import ACCESS_TOKEN_QUERY
from gateway.policy import is_public
from gateway.transcoding import fields
from gateway.transcoding.routes import Route
from gateway.transcoding.template import Kind, PathTemplate, Variable

_QUERY_DEPTH = 4  # how deep nested messages are flattened into dotted query parameters

ERROR_SCHEMA: Schema = {
    "type": "object",
    "description": "The body of every non-2xx response (API.md § Conventions).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message", "details", "request_id"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable machine-readable reason (google.rpc.ErrorInfo "
                    "reason), else the status name.",
                },
                "status": {
                    "type": "string",
                    "description": "The gRPC status name.",
                    "enum": sorted(HTTP_STATUS),
                },
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "integer"]},
                },
                "request_id": {"type": "string"},
            },
        }
    },
}


def build_openapi(
    routes: Sequence[Route],
    comments: Mapping[str, str],
    *,
    title: str = "klik API",
    version: str = "v1",
) -> dict[str, Any]:
    schemas = Schemas(comments)
    for message in _messages_of(routes):
        schemas.message(message)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, str]] = {}
    for route in routes:
        tags.setdefault(route.service.name, _tag(route, comments))
        operations = paths.setdefault(openapi_path(route.template), {})
        method = route.http_method.lower()
        if method in operations:
            raise ValueError(f"two routes give {route.http_method} {openapi_path(route.template)}")
        operations[method] = _operation(route, comments, schemas, is_public(route))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Generated from the protobuf contracts' google.api.http "
            "annotations. JSON uses proto field names; 64-bit integers are strings.",
        },
        "servers": [{"url": "/"}],
        "tags": list(tags.values()),
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {**dict(sorted(schemas.components.items())), "Error": ERROR_SCHEMA},
            "responses": {
                "Error": {
                    "description": "Any failure, in the one error shape.",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds to wait (429, and 503 when known).",
                            "schema": {"type": "integer"},
                        }
                    },
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _messages_of(routes: Sequence[Route]) -> Iterator[Descriptor]:
    """Every message declared in the files that declare the routed services."""
    files = {route.service.file.name: route.service.file for route in routes}
    for file in files.values():
        yield from file.message_types_by_name.values()


def openapi_path(template: PathTemplate) -> str:
    """`/v1/{name=shelves/*}:x` becomes `/v1/{name}:x`: each variable is one path
    parameter, whatever it spans (its pattern says what it accepts)."""
    starts = {v.start: v for v in template.variables}
    parts: list[str] = []
    index = 0
    while index < len(template.segments):
        variable = starts.get(index)
        if variable is not None:
            parts.append("{" + variable.field_path + "}")
            index = variable.end if variable.end is not None else len(template.segments)
        else:
            parts.append(str(template.segments[index]))
            index += 1
    verb = f":{template.verb}" if template.verb else ""
    return "/" + "/".join(parts) + verb


def _tag(route: Route, comments: Mapping[str, str]) -> dict[str, str]:
    tag = {"name": route.service.name}
    comment = comments.get(route.service.full_name)
    if comment:
        tag["description"] = comment
    return tag


def _operation(
    route: Route, comments: Mapping[str, str], schemas: Schemas, public: bool
) -> dict[str, Any]:
    comment = comments.get(route.full_name, "")
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [route.service.name],
        "summary": _summary(comment) or route.method.name,
    }
    if comment:
        operation["description"] = comment
    parameters = [_path_parameter(route, v, schemas) for v in route.template.variables]
    if route.body != "*":
        parameters.extend(_query_parameters(route, schemas))
    if route.stream is not None:
        parameters.extend(_stream_parameters(route))
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        operation["requestBody"] = _request_body(route, schemas)
    ok = (
        _stream_response(route, schemas)
        if route.stream is not None
        else {
            "description": "OK",
            "content": {"application/json": {"schema": _response_schema(route, schemas)}},
        }
    )
    found = {"302": _redirect_response(route, schemas)} if route.redirect_field else {}
    operation["responses"] = {
        "200": ok,
        **found,
        **_reason_responses(route),
        "default": {"$ref": "#/components/responses/Error"},
    }
    if public:
        operation["security"] = []
    operation["x-grpc-method"] = route.grpc_path
    return operation


def _redirect_response(route: Route, schemas: Schemas) -> dict[str, Any]:
    """A redirect route's 302 ((klik.options.v1.redirect_field)): `Location` is the
    response field's value."""
    field = route.method.output_type.fields_by_name[route.redirect_field]
    about = schemas.comments.get(field.full_name, "")
    return {
        "description": "Found: the browser goes on to `Location`.",
        "headers": {
            "Location": {
                "description": about or f"The response's `{field.name}`.",
                "schema": {"type": "string", "format": "uri"},
            }
        },
    }


def _reason_responses(route: Route) -> dict[str, Any]:
    """A response per HTTP status the RPC answers some reasons with (402 for
    `INSUFFICIENT_CREDITS`...), in the error shape, naming the reasons."""
    reasons: dict[int, list[str]] = {}
    for declared in declared_statuses(route.method):
        reasons.setdefault(declared.http_status, []).append(declared.reason)
    responses: dict[str, Any] = {}
    for status, names in sorted(reasons.items()):
        listed = ", ".join(f"`{name}`" for name in names)
        responses[str(status)] = {
            "description": f"{_phrase(status)}: {listed}, in the error shape.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _summary(comment: str) -> str:
    first = comment.split("\n\n", 1)[0].replace("\n", " ").strip()
    sentence, dot, _ = first.partition(". ")
    return sentence + "." if dot else first


def _path_parameter(route: Route, variable: Variable, schemas: Schemas) -> dict[str, Any]:
    leaf = fields.resolve(route.method.input_type, variable.field_path)[-1]
    schema = schemas.single(leaf)
    description = schemas.comments.get(leaf.full_name, "")
    if variable.multi_segment:
        schema = {"type": "string", "pattern": _pattern_regex(variable)}
        description = (
            f"{description}\n\nMatches `{variable.pattern_text}`: its segments are "
            "separated by unencoded '/'."
        ).strip()
    elif schema.get("type") == "string":
        schema = {**schema, "maxLength": route.path_limits[variable.field_path]}
    parameter: dict[str, Any] = {
        "name": variable.field_path,
        "in": "path",
        "required": True,
        "schema": schema,
    }
    if description:
        parameter["description"] = description
    return parameter


def _pattern_regex(variable: Variable) -> str:
    parts = []
    for segment in variable.pattern:
        if segment.kind is Kind.LITERAL:
            parts.append(segment.literal.replace(".", r"\."))
        elif segment.kind is Kind.ONE:
            parts.append("[^/]+")
        else:
            parts.append(".*")
    return "^" + "/".join(parts) + "$"


def _query_parameters(route: Route, schemas: Schemas) -> list[dict[str, Any]]:
    taken = {*route.path_fields, *([route.body] if route.body else [])}
    found = []
    for name, field in _leaves(route.method.input_type, "", taken, ()):
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schemas.field(field)}
        description = parameter["schema"].pop("description", None)
        if description:
            parameter["description"] = description
        if fields.is_repeated(field):
            parameter["style"], parameter["explode"] = "form", True
        if is_required(field):
            parameter["required"] = True
        found.append(parameter)
    return found


def _leaves(
    message: Descriptor, prefix: str, taken: set[str], seen: tuple[str, ...]
) -> Iterator[tuple[str, FieldDescriptor]]:
    """Every field a query parameter can set: scalars, enums and scalar-like
    well-known types, through singular nested messages (dotted)."""
    for field in message.fields:
        name = prefix + field.name
        if name in taken or fields.is_map(field):
            continue
        if fields.is_scalar_like(field):
            yield name, field
        elif not fields.is_repeated(field):
            nested = fields.message_of(field)
            if nested.full_name in seen or len(seen) >= _QUERY_DEPTH:
                continue
            if nested.full_name.startswith("google.protobuf."):
                continue
            yield from _leaves(nested, name + ".", taken, (*seen, nested.full_name))


def _request_body(route: Route, schemas: Schemas) -> dict[str, Any]:
    request = route.method.input_type
    if route.body == "*":
        in_path = frozenset(route.path_fields)
        if in_path & set(request.fields_by_name):
            schema = schemas.object(request, leave_out=in_path)
        else:
            schema = schemas.message(request)
        required = False  # an empty body is `{}`
    else:
        schema = schemas.field(request.fields_by_name[route.body])
        required = True
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _response_schema(route: Route, schemas: Schemas) -> Schema:
    response = route.method.output_type
    if route.response_body:
        return schemas.field(response.fields_by_name[route.response_body])
    return schemas.message(response)


STREAM_RULES = (
    "Server-Sent Events: one event per response message, `data:` one line of JSON "
    "(the unary routes' encoding). The stream starts once the service sends its first "
    "message; a failure before that is the ordinary error response with its HTTP "
    "status. A failure after it is a last `event: error` (no `id:`) whose `data:` is "
    "the error body (`Error`); a normal end of the call ends the response. Comment "
    "lines are heartbeats. The stream also ends with `event: error` when the access "
    "token expires (`TOKEN_EXPIRED`), its user is deleted (`INVALID_TOKEN`) or the "
    "gateway stops (`UNAVAILABLE`): reconnect. A user holds a few streams at once "
    "(429 `TOO_MANY_STREAMS` beyond). Browsers may pass the token as `access_token`."
)


def _stream_parameters(route: Route) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [ACCESS_TOKEN_QUERY]
    if route.stream is not None and route.stream.last_event_id:
        found.append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "Resume after this event `id:` (fills `last_event_id` "
                "unless the query or body sets it; EventSource sends it on reconnect).",
                "schema": {"type": "string"},
            }
        )
    return found


def _stream_response(route: Route, schemas: Schemas) -> dict[str, Any]:
    """200 of a server-streaming route (gateway.transcoding.streaming)."""
    shape = route.stream
    assert shape is not None
    response = route.method.output_type
    if shape.oneof:
        events = {f.name: schemas.field(f) for f in shape.events}
        how = f"named by the field of `{shape.oneof}` that is set, `data:` its value"
    else:
        events = {"message": schemas.message(response)}
        how = "all `event: message`, `data:` the whole message"
    listed = "; ".join(f"`{name}`: {_schema_name(schema)}" for name, schema in events.items())
    ids = (
        " Each event's `id:` is the message's `event_id` (omitted when empty; not in `data:`)."
        if shape.event_id
        else ""
    )
    description = f"The event stream. Events ({how}): {listed}.{ids} {STREAM_RULES}"
    return {
        "description": description,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "x-sse-events": {**events, "error": {"$ref": COMPONENTS + "Error"}},
    }


def _schema_name(schema: Schema) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return f"`{ref.removeprefix(COMPONENTS)}`"
    return f"a JSON {schema.get('type', 'value')}"
