"""Server-streaming RPCs as Server-Sent Events: the contract service authors code
against (also in each streaming operation's OpenAPI description).

Any server-streaming RPC with a `google.api.http` annotation is a `text/event-stream`
route; nothing in the gateway names it.

- **The request** decodes exactly as a unary route's: path, query and body (POST
  bodies included), with the same auth, public/authenticated policy, rate limits and
  admission. Streaming routes also take the access token as the `access_token` query
  parameter (a browser's EventSource cannot send headers); it is passed on to the
  service as `authorization: Bearer …`, like the header.
- **`last_event_id`**: if the request message has a string field `last_event_id` and
  the HTTP request carries `Last-Event-ID` (EventSource sends it when it reconnects),
  the header fills that field, unless the query or body already set it.
- **Events**: each response message is one SSE event. If the response message has
  exactly one (real) oneof, `event:` is the name of the oneof field that is set and
  `data:` is that field's value as JSON (a message as the unary routes encode it, a
  scalar as its JSON value); a message with that oneof unset is not sent. A response
  message with no oneof is `event: message` with the whole message as `data:`. More
  than one oneof is refused when the gateway starts (the event name would be
  ambiguous), and so is `response_body`. `data:` is always one line.
- **`event_id`**: a string field `event_id` outside the oneof, when non-empty, is the
  event's `id:` line (what a reconnecting client sends back as `Last-Event-ID`); it is
  not otherwise sent.
- **Before the first event** the gateway waits for the call's first message, its
  failure, or initial metadata with at least one entry (a service that wants the
  HTTP stream open before it has anything to send calls
  `context.send_initial_metadata(...)` with an entry). A failure before that is the
  ordinary JSON error response with its mapped HTTP status, exactly as for a unary
  route: a client gets a 404 or 403, not a 200 stream with an error in it.
- **After the stream started** a gRPC failure ends it with a final `event: error`
  whose `data:` is API.md's error body (the same mapping as unary: code, message,
  details), with no `id:`; a normal end of the RPC ends the HTTP response.
- **Heartbeats and lifetime** are those of `/v1/events` (gateway.sse): `retry:` first,
  a comment line every `KLIK_GATEWAY_SSE_HEARTBEAT_SECONDS` while idle, and a final
  `event: error` `TOKEN_EXPIRED` when the access token the stream was opened with
  expires (`INVALID_TOKEN` when its user is deleted, `UNAVAILABLE` when the gateway
  stops). The call has no deadline but `KLIK_GATEWAY_STREAM_MAX_SECONDS`.
- **The client going away** cancels the upstream call at once.
- **Open streams per user** are capped (`KLIK_GATEWAY_STREAM_MAX_PER_USER` per gateway
  replica, counted apart from `/v1/events`); past it the request is refused before
  any call with 429 `TOO_MANY_STREAMS`. Anonymous streams on public routes are
  counted per client address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, OneofDescriptor
from google.protobuf.message import Message

from gateway.transcoding.encode import to_json_value

EVENT_ID = "event_id"
LAST_EVENT_ID = "last_event_id"
DEFAULT_EVENT = "message"


class StreamShapeError(ValueError):
    """A streaming RPC whose messages have no one SSE mapping."""


@dataclass(frozen=True)
class StreamShape:
    """How a server-streaming RPC's messages become SSE events."""

    oneof: str  # the response's one real oneof ("": no oneof, every event is `message`)
    events: tuple[FieldDescriptor, ...]  # the oneof's fields: one event name each
    event_id: bool  # the response has a string `event_id` outside the oneof
    last_event_id: bool  # the request has a string `last_event_id`

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.events) if self.oneof else (DEFAULT_EVENT,)


def stream_shape(method: MethodDescriptor) -> StreamShape:
    response = method.output_type
    oneofs = [o for o in response.oneofs if not _synthetic(o)]
    if len(oneofs) > 1:
        names = ", ".join(o.name for o in oneofs)
        raise StreamShapeError(
            f"{response.full_name} has {len(oneofs)} oneofs ({names}): a streamed "
            "response has at most one, whose set field names the event"
        )
    oneof = oneofs[0] if oneofs else None
    event_id = response.fields_by_name.get(EVENT_ID)
    if event_id is not None and oneof is not None and event_id.containing_oneof is oneof:
        raise StreamShapeError(f"{response.full_name}: {EVENT_ID} must be outside the oneof")
    return StreamShape(
        oneof=oneof.name if oneof is not None else "",
        events=tuple(oneof.fields) if oneof is not None else (),
        event_id=_is_string(event_id),
        last_event_id=_is_string(method.input_type.fields_by_name.get(LAST_EVENT_ID)),
    )


def _synthetic(oneof: OneofDescriptor) -> bool:
    """The oneof protoc makes for a proto3 `optional` field (named `_<field>`): not a
    real oneof."""
    return len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name


def _is_string(field: FieldDescriptor | None) -> bool:
    return field is not None and field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated


def fill_last_event_id(shape: StreamShape, request: Message, header: str) -> None:
    """`Last-Event-ID` into the request's `last_event_id`, unless already set."""
    if shape.last_event_id and header and not getattr(request, LAST_EVENT_ID):
        setattr(request, LAST_EVENT_ID, header)


def sse_frame(event: str, data: str, event_id: str = "") -> bytes:
    """One SSE event; `data` must be one line (JSON as json.dumps writes it is)."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def one_line_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_event(shape: StreamShape, message: Message) -> bytes | None:
    """The SSE event of one response message (None: a oneof left unset, nothing to
    send)."""
    value = to_json_value(message)
    event_id = str(value.pop(EVENT_ID, "")) if shape.event_id else ""
    if any(c in event_id for c in "\r\n\0"):
        event_id = ""  # it would break the framing; no id rather than a broken one
    if not shape.oneof:
        return sse_frame(DEFAULT_EVENT, one_line_json(value), event_id)
    name = message.WhichOneof(shape.oneof)
    if name is None:
        return None
    return sse_frame(name, one_line_json(value[name]), event_id)
