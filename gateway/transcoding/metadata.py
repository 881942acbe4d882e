"""What an HTTP request passes on to the service as gRPC metadata."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from gateway.auth import presented_authorization
from gateway.clientaddr import CLIENT_ADDRESS_KEY
from gateway.errors import GatewayError
from gateway.policy import client_address
from kit.context import current_request_id
from kit.interceptors import REQUEST_ID_KEY

# The client's User-Agent (auth shows it in ListSessions). Under a name of its own:
# gRPC's `user-agent` is the channel's, not the HTTP client's.
USER_AGENT_KEY = "klik-user-agent"
MAX_USER_AGENT_LENGTH = 300


def outgoing_metadata(
    connection: HTTPConnection, forward: tuple[str, ...] = (), *, query_token: bool = False
) -> tuple[tuple[str, str], ...]:
    """`authorization` as given (with `query_token`, the `access_token` query
    parameter stands in for a missing header, gateway.auth), the request id, the
    headers named in `forward` (a route's `forward_headers`; one that is not
    printable ASCII is left out), and
    `klik-client-address`: the one client address the gateway vouches for
    (gateway.clientaddr; the services see who called, not the gateway), and
    `klik-user-agent`: the client's `User-Agent` (at most 300 characters). The
    client's own `X-Forwarded-For` is never passed on."""
    metadata: list[tuple[str, str]] = [(REQUEST_ID_KEY, current_request_id())]
    authorization = presented_authorization(connection, query_token=query_token)
    if authorization is not None:
        if not _printable_ascii(authorization):
            raise GatewayError(
                "UNAUTHENTICATED", "malformed Authorization header", code="INVALID_TOKEN"
            )
        metadata.append(("authorization", authorization))
    for name in forward:
        for value in connection.headers.getlist(name):
            if _printable_ascii(value):
                metadata.append((name, value))
    address = client_address(connection)
    if _printable_ascii(address):
        metadata.append((CLIENT_ADDRESS_KEY, address))
    agent = connection.headers.get("user-agent", "")[:MAX_USER_AGENT_LENGTH]
    if agent and _printable_ascii(agent):
        metadata.append((USER_AGENT_KEY, agent))
    return tuple(metadata)


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()
