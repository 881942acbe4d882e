"""Who the client is: the gateway decides it itself. The peer of the connection is
the client, unless the peer is one of the configured proxies
(`KLIK_GATEWAY_TRUSTED_PROXIES`, CIDRs; none by default): then `X-Forwarded-For` is
read from the right, skipping the hops that are trusted proxies too, and the first
untrusted hop is the client. Everything left of it is whatever the client chose to
send, and is never believed or passed on. Services receive the one address the
gateway vouches for as the gRPC metadata `klik-client-address`."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

CLIENT_ADDRESS_KEY = "klik-client-address"  # the gRPC metadata services read
SCOPE_KEY = "klik.client_address"  # where ClientAddress leaves it in the ASGI scope
UNKNOWN = "unknown"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(variable: str, value: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128); ValueError naming
    `variable` for anything else."""
    networks: list[Network] = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{variable}: {item.strip()!r} is not an address or CIDR") from None
    return tuple(networks)


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    def trusts(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_of(self, peer: str, forwarded: Iterable[str]) -> str:
        """The client address of a request from `peer` carrying the X-Forwarded-For
        header values `forwarded` (in the order they came)."""
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded for hop in value.split(",")]
        address = peer
        for hop in reversed(hops):
            if not _is_address(hop):
                break  # a proxy we trust wrote garbage: the proxy is all we know
            address = hop
            if not self.trusts(hop):
                break
        return address


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class ClientAddress:
    """ASGI middleware: resolve the client address once per request (see the module
    docstring) and leave it in the scope for the rate limits and the upstream
    metadata (`client_address`)."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            peer = client[0] if client else UNKNOWN
            forwarded = _header_values(scope["headers"], b"x-forwarded-for")
            scope[SCOPE_KEY] = self.proxies.client_of(peer, forwarded)
        await self.app(scope, receive, send)


def _header_values(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in headers if key.lower() == name]


def scope_client_address(scope: Scope) -> str:
    """The address ClientAddress resolved; the bare peer where it did not run."""
    resolved = scope.get(SCOPE_KEY)
    if isinstance(resolved, str):
        return resolved
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN
