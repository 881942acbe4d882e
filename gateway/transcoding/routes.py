"""Routes derived from the `google.api.http` options of service descriptors: one per
binding (the rule itself and each of its `additional_bindings`). Nothing here is
written per RPC: annotate a new RPC and it is routed. A server-streaming RPC is a
Server-Sent Events route (gateway.transcoding.streaming says how)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

from gateway.transcoding import fields
from gateway.transcoding.streaming import StreamShape, StreamShapeError, stream_shape
from gateway.transcoding.template import PathTemplate, TemplateError, parse
from klik.options.v1 import options_pb2

_PATTERNS = ("get", "put", "post", "delete", "patch")
HTTP_BODY = "google.api.HttpBody"
# protoc's stubs type extensions as plain FieldDescriptors, which Extensions[] refuses.
_FORWARD_HEADERS: Any = options_pb2.forward_headers
_REDIRECT_FIELD: Any = options_pb2.redirect_field
_MAX_LENGTH: Any = options_pb2.max_length
# No path parameter (an id, a handle) is longer when its field names no
# (klik.options.v1.max_length): 400 before any service is called, so a huge one
# never comes back in a reply's metadata past gRPC's size limit.
MAX_PATH_PARAMETER_LENGTH = 256


class RouteError(ValueError):
    """An annotation the gateway cannot serve (bad template, unknown field...)."""


@dataclass(frozen=True, eq=False)
class Route:
    upstream: str  # which upstream channel serves it (gateway settings' upstream name)
    service: ServiceDescriptor
    method: MethodDescriptor
    http_method: str
    template: PathTemplate
    body: str  # "" (no body), "*" (the whole request), or a top-level field name
    response_body: str  # "" (the whole response) or a top-level field name
    binding: int  # 0 for the rule itself, 1.. for its additional bindings
    # PATCH with a body field: the request's FieldMask field the gateway fills from
    # the body's keys when the client sends no mask (grpc-gateway's patch feature).
    mask_field: str = ""
    # A raw-body route: "*" when the request is a google.api.HttpBody, else the name
    # of its HttpBody field; the body is passed on as sent, never parsed as JSON.
    raw_body: str = ""
    # Request headers passed on as metadata ((klik.options.v1.forward_headers)).
    forward_headers: tuple[str, ...] = ()
    # A server-streaming RPC: how its messages become SSE events (None: unary).
    stream: StreamShape | None = None
    # The response's string field a non-empty value of which answers 302 to it
    # ((klik.options.v1.redirect_field)); "" for a JSON route.
    redirect_field: str = ""
    request_class: type[Message] = field(init=False)
    response_class: type[Message] = field(init=False)
    # The longest value of each path parameter (by field path).
    path_limits: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "path_limits",
            {p: path_limit(self.method.input_type, p) for p in self.template.field_paths},
        )
        object.__setattr__(
            self, "request_class", message_factory.GetMessageClass(self.method.input_type)
        )
        object.__setattr__(
            self, "response_class", message_factory.GetMessageClass(self.method.output_type)
        )

    def __repr__(self) -> str:
        return f"<Route {self.http_method} {self.template.text} -> {self.full_name}>"

    @property
    def path(self) -> str:
        """The template: what metrics label a request with (bounded, never the raw path)."""
        return self.template.text

    @property
    def grpc_path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    @property
    def full_name(self) -> str:
        return self.method.full_name

    @property
    def operation_id(self) -> str:
        suffix = "" if self.binding == 0 else str(self.binding + 1)
        return f"{self.service.name}_{self.method.name}{suffix}"

    @property
    def path_fields(self) -> tuple[str, ...]:
        return self.template.field_paths


def http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return rule


def build_routes(services: Mapping[str, Iterable[ServiceDescriptor]]) -> list[Route]:
    """Every binding of every annotated method; `services` maps an upstream name to
    the services it serves. Raises RouteError on an annotation that cannot work."""
    routes: list[Route] = []
    for upstream, descriptors in services.items():
        for service in descriptors:
            for method in service.methods:
                rule = http_rule(method)
                if rule is None:
                    continue
                if method.client_streaming:
                    raise RouteError(f"{method.full_name}: client-streaming RPCs are not routed")
                for index, binding in enumerate(_bindings(rule)):
                    routes.append(route_for(upstream, service, method, binding, index))
    return routes


def _bindings(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        if extra.additional_bindings:
            raise RouteError("additional_bindings cannot nest")
        yield extra


def route_for(
    upstream: str,
    service: ServiceDescriptor,
    method: MethodDescriptor,
    rule: http_pb2.HttpRule,
    index: int,
) -> Route:
    where = f"{method.full_name} (binding {index})"
    kind = rule.WhichOneof("pattern")
    if kind in _PATTERNS:
        http_method, path = kind.upper(), str(getattr(rule, kind))
    elif kind == "custom":
        http_method, path = rule.custom.kind.upper(), rule.custom.path
    else:
        raise RouteError(f"{where}: no HTTP pattern")
    try:
        template = parse(path)
    except TemplateError as error:
        raise RouteError(f"{where}: {error}") from None
    request = method.input_type
    for variable in template.variables:
        _check_path_field(request, variable.field_path, where)
    if rule.body not in ("", "*"):
        _check_top_level(request, rule.body, where, "body")
        if rule.body in template.field_paths:
            raise RouteError(f"{where}: body field {rule.body!r} is also bound by the path")
    if rule.response_body:
        _check_top_level(method.output_type, rule.response_body, where, "response_body")
    mask = ""
    if http_method == "PATCH" and rule.body not in ("", "*"):
        mask = _mask_field(request, {rule.body, *template.field_paths})
    raw = _raw_body(request, rule.body, where)
    forwarded = tuple(h.lower() for h in method.GetOptions().Extensions[_FORWARD_HEADERS])
    for header in forwarded:
        if not header or not all(c.isalnum() or c == "-" for c in header):
            raise RouteError(f"{where}: forward_headers {header!r} is not a header name")
    return Route(
        redirect_field=_redirect_field(method, rule, where),
        stream=_stream_shape(method, rule, where),
        upstream=upstream,
        service=service,
        method=method,
        http_method=http_method,
        template=template,
        body=rule.body,
        response_body=rule.response_body,
        binding=index,
        mask_field=mask,
        raw_body=raw,
        forward_headers=forwarded,
    )


def _stream_shape(
    method: MethodDescriptor, rule: http_pb2.HttpRule, where: str
) -> StreamShape | None:
    """A server-streaming RPC's SSE mapping (gateway.transcoding.streaming)."""
    if not method.server_streaming:
        return None
    if rule.response_body:
        raise RouteError(f"{where}: a streaming RPC's events are whole messages: no response_body")
    try:
        return stream_shape(method)
    except StreamShapeError as error:
        raise RouteError(f"{where}: {error}") from None


def _redirect_field(method: MethodDescriptor, rule: http_pb2.HttpRule, where: str) -> str:
    """(klik.options.v1.redirect_field): a singular string field of a unary RPC's
    response, whole (no response_body)."""
    name: str = method.GetOptions().Extensions[_REDIRECT_FIELD]
    if not name:
        return ""
    field = method.output_type.fields_by_name.get(name)
    if field is None or field.type != field.TYPE_STRING or fields.is_repeated(field):
        raise RouteError(f"{where}: redirect_field {name!r} is not a string field of the response")
    if method.server_streaming or rule.response_body:
        raise RouteError(f"{where}: a redirect route is unary and answers its whole response")
    return name


def _raw_body(request: Descriptor, body: str, where: str) -> str:
    """ "*" when the request itself is an HttpBody, the body field's name when it is
    an HttpBody field, "" otherwise. An HttpBody anywhere else is refused: the
    gateway would not know which bytes to put in it."""
    if request.full_name == HTTP_BODY:
        if body != "*":
            raise RouteError(f'{where}: an HttpBody request takes body: "*"')
        return "*"
    bodies = [
        f.name
        for f in request.fields
        if fields.is_message(f)
        and not fields.is_repeated(f)
        and fields.message_name(f) == HTTP_BODY
    ]
    if not bodies:
        return ""
    if body not in bodies:
        raise RouteError(f"{where}: an HttpBody field must be the route's body field")
    return body


def _check_path_field(request: Descriptor, path: str, where: str) -> None:
    try:
        chain = fields.resolve(request, path)
    except fields.FieldPathError as error:
        raise RouteError(f"{where}: path variable {error}") from None
    leaf = chain[-1]
    if fields.is_repeated(leaf) or fields.is_message(leaf):
        raise RouteError(f"{where}: path variable {path!r} must be a singular scalar field")


def _check_top_level(message: Descriptor, name: str, where: str, what: str) -> None:
    if name not in message.fields_by_name:
        raise RouteError(f"{where}: {what} {name!r} is not a field of {message.full_name}")


def _mask_field(request: Descriptor, bound: set[str]) -> str:
    """The one top-level FieldMask field not bound elsewhere, if there is exactly one."""
    candidates = [
        f.name
        for f in request.fields
        if fields.is_message(f)
        and not fields.is_repeated(f)
        and fields.message_name(f) == fields.FIELD_MASK
        and f.name not in bound
    ]
    return candidates[0] if len(candidates) == 1 else ""


def path_limit(message: Descriptor, field_path: str) -> int:
    """The longest value the path parameter bound to `field_path` of `message` takes:
    its field's (klik.options.v1.max_length), else MAX_PATH_PARAMETER_LENGTH."""
    descriptor: Descriptor | None = message
    found: FieldDescriptor | None = None
    for name in field_path.split("."):
        found = None if descriptor is None else descriptor.fields_by_name.get(name)
        if found is None:
            return MAX_PATH_PARAMETER_LENGTH
        descriptor = found.message_type
    limit = int(found.GetOptions().Extensions[_MAX_LENGTH]) if found is not None else 0
    return limit or MAX_PATH_PARAMETER_LENGTH
