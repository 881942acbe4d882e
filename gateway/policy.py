"""Edge policy that annotations do not carry: which RPCs are public, which rate-limit
class a route falls in, and whose buckets a request draws on."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from gateway.transcoding.routes import Route

# API.md § Conventions: every route needs `Authorization: Bearer` except these.
PUBLIC_METHODS = frozenset(
    {
        "klik.auth.v1.AuthService.Register",
        "klik.auth.v1.AuthService.Login",
        "klik.auth.v1.AuthService.Refresh",
        "klik.auth.v1.AuthService.GetJwks",
        "klik.generation.v1.GenerationService.GetPricing",
    }
)

# Rate-limit classes (KLIK_GATEWAY_RATE_<CLASS>).
CREDENTIALS = "auth"  # public routes that take credentials: the guessing surface
READ = "read"
WRITE = "write"
RATE_CLASSES = (CREDENTIALS, READ, WRITE)


def is_public(route: Route) -> bool:
    return route.full_name in PUBLIC_METHODS


def rate_class(route: Route) -> str:
    if route.http_method == "GET":
        return READ
    return CREDENTIALS if is_public(route) else WRITE


def client_address(connection: HTTPConnection) -> str:
    """The peer address (uvicorn has already replaced it with the forwarded one when
    the peer is a trusted proxy: `--forwarded-allow-ips`)."""
    return connection.client.host if connection.client else "unknown"


def bucket_keys(connection: HTTPConnection) -> list[str]:
    """The buckets a request draws on; it is refused when any of them is empty.

    Today: the client address. Seam for auth at the edge: once the gateway verifies
    the access token (kit.tokens), an authenticated request should draw on
    `f"user:{claims.subject}"` instead, so users behind one NAT stop sharing a bucket
    and one user cannot multiply their limit by changing address."""
    return [f"addr:{client_address(connection)}"]
