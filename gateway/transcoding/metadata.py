"""What an HTTP request passes on to the service as gRPC metadata."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from gateway.errors import GatewayError
from gateway.policy import client_address
from kit.context import current_request_id
from kit.interceptors import REQUEST_ID_KEY


def outgoing_metadata(
    connection: HTTPConnection, forward: tuple[str, ...] = ()
) -> tuple[tuple[str, str], ...]:
    """`authorization` as given, the request id, the headers named in `forward` (a
    route's `forward_headers`; one that is not printable ASCII is left out), and
    `x-forwarded-for`: the incoming
    chain with the client address appended (the services see who called, not the
    gateway). When uvicorn already took the client address from that chain (the peer
    is a trusted proxy, `--forwarded-allow-ips`), it is not appended twice."""
    metadata: list[tuple[str, str]] = [(REQUEST_ID_KEY, current_request_id())]
    authorization = connection.headers.get("authorization")
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
    forwarded = connection.headers.get("x-forwarded-for", "").strip()
    client = client_address(connection)
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops or hops[-1] != client:
        hops.append(client)
    chain = ", ".join(hops)
    if _printable_ascii(chain):
        metadata.append(("x-forwarded-for", chain))
    return tuple(metadata)


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()
