"""The API document's entries for the two routes no proto declares: the event stream
and file downloads (they are not RPCs: one streams from JetStream, the other bytes
from the asset store)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ERROR = {"$ref": "#/components/responses/Error"}


def events_operations(streamed: Iterable[str]) -> dict[str, Any]:
    """/v1/events, streaming the events of the `streamed` types."""
    types = ", ".join(f"`{event_type}`" for event_type in sorted(streamed))
    return {"get": {**_EVENTS, "description": _EVENTS_DESCRIPTION.format(types=types)}}


_EVENTS_DESCRIPTION = (
    "A `text/event-stream` of the caller's own events of these types, as they "
    "happen: {types}. Each event has `id:` (its position in the event log), "
    "`event:` (its type) and `data:` (one line of "
    "JSON: the event envelope, `payload` decoded, proto field names). A stream "
    "without `Last-Event-ID` starts with new events only; send the last `id` "
    "you saw as `Last-Event-ID` (browsers do it when they reconnect) to resume "
    "right after it, with no gap and no repeat. Comment lines are heartbeats. "
    "A user may hold a few streams at once (429 `TOO_MANY_STREAMS` beyond). "
    "A stream ends when its access token expires or its user is deleted, with a "
    "last `event: error` (no `id:`) whose `data:` is the error body, code "
    "`TOKEN_EXPIRED` or `INVALID_TOKEN`: reconnect with a fresh token and "
    "`Last-Event-ID`. "
    "Browsers, whose `EventSource` cannot send `Authorization`, may pass the "
    "access token as the `access_token` query parameter instead (event "
    "streams only)."
)

ACCESS_TOKEN_QUERY: dict[str, Any] = {
    "name": "access_token",
    "in": "query",
    "required": False,
    "description": (
        "The bearer token, for clients that cannot send the Authorization "
        "header (EventSource); ignored when the header is sent."
    ),
    "schema": {"type": "string"},
}

_EVENTS: dict[str, Any] = {
    "operationId": "StreamEvents",
    "tags": ["Gateway"],
    "summary": "The caller's own events, as Server-Sent Events.",
    "parameters": [
        ACCESS_TOKEN_QUERY,
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "description": "Resume after this event id.",
            "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
        },
    ],
    "responses": {
        "200": {
            "description": "The event stream (open until the client leaves).",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        "default": ERROR,
    },
}

_FILE_HEADERS: dict[str, Any] = {
    "ETag": {"schema": {"type": "string"}},
    "Cache-Control": {"schema": {"type": "string"}},
    "Accept-Ranges": {"schema": {"type": "string"}},
}
_FILE_RESPONSES: dict[str, Any] = {
    "200": {
        "description": "The whole file.",
        "headers": _FILE_HEADERS,
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    "206": {
        "description": "The requested byte range (`Content-Range` says which).",
        "headers": {**_FILE_HEADERS, "Content-Range": {"schema": {"type": "string"}}},
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    "304": {"description": "Not modified (If-None-Match matched the ETag)."},
    "default": ERROR,
}
_FILE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "The file's key: the last part of a job result's `asset_url`.",
        "schema": {"type": "string"},
    },
    {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
]
_FILE_DESCRIPTION = (
    "Downloads a generated file (image, video) from its `asset_url`. No bearer token: "
    "the unguessable key is the capability (share the URL, share the file), which "
    "lets `<img>` and `<video>` elements load it. Content never changes under a key, "
    "so responses are cacheable for a year. Single byte ranges are served (206; 416 "
    "past the end) for video seeking."
)


def _file_operation(method: str) -> dict[str, Any]:
    return {
        "operationId": f"{method}File",
        "tags": ["Gateway"],
        "summary": "A generated file." if method == "Get" else "A generated file's headers.",
        "description": _FILE_DESCRIPTION,
        "security": [],
        "parameters": _FILE_PARAMETERS,
        "responses": _FILE_RESPONSES,
    }


FILES: dict[str, Any] = {"get": _file_operation("Get"), "head": _file_operation("Head")}


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


UPLOAD_CONTENT: dict[str, Any] = {
    "put": {
        "operationId": "PutUploadContent",
        "tags": ["Gateway"],
        "summary": "The bytes of an upload, on its signed `upload_url`.",
        "description": (
            "Takes the file of an upload granted by `POST /v1/uploads` (CreateUpload): "
            "PUT it to the `upload_url` as it was given. No bearer token: the signature "
            "is the capability, for one body until the URL expires. The body streams "
            "into the asset store and is refused, leaving nothing stored, when it "
            "passes the declared size or the hard limit (413 `UPLOAD_TOO_LARGE`), "
            "ends short (400 `UPLOAD_SIZE_MISMATCH`), or its magic bytes are not the "
            "declared type (400 `UPLOAD_TYPE_MISMATCH`); a bad signature is 403 "
            "`UPLOAD_URL_INVALID`, an expired URL 403 `UPLOAD_URL_EXPIRED`, a URL "
            "that took its body already 409 `UPLOAD_URL_USED`. Then complete the "
            "upload with `POST /v1/uploads/{upload_id}:complete`."
        ),
        "security": [],
        "parameters": [
            {
                "name": "upload_id",
                "in": "path",
                "required": True,
                "description": "The upload's id, from CreateUpload.",
                "schema": {"type": "string"},
            },
            _query("type", "The declared content type (signed)."),
            _query("size", "The declared size in bytes (signed)."),
            _query("expires", "The URL's expiry, seconds since the epoch (signed)."),
            _query("sig", "The signature."),
        ],
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        "responses": {
            "200": {
                "description": "Stored: `{upload_id, size, content_type}`.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "default": ERROR,
        },
    }
}


def add_gateway_routes(spec: dict[str, Any], streamed: Iterable[str]) -> dict[str, Any]:
    """`spec` with /v1/events (streaming the `streamed` event types),
    /v1/files/{key} and the upload URLs' PUT added."""
    spec["paths"]["/v1/events"] = events_operations(streamed)
    spec["paths"]["/v1/files/{key}"] = FILES
    spec["paths"]["/v1/uploads/{upload_id}/content"] = UPLOAD_CONTENT
    tags = spec.setdefault("tags", [])
    tags.append({"name": "Gateway", "description": "Routes of the gateway itself."})
    return spec
