"""Edge policy: which RPCs are public (their contract says so), which rate-limit
class a route falls in, and whose buckets a request draws on."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from gateway.clientaddr import scope_client_address
from gateway.transcoding.routes import Route
from klik.options.v1 import options_pb2

# protoc's stubs type extensions as plain FieldDescriptors, which Extensions[] refuses.
_PUBLIC: Any = options_pb2.public

# Rate-limit classes (KLIK_GATEWAY_RATE_<CLASS>).
CREDENTIALS = "auth"  # public routes that take credentials: the guessing surface
READ = "read"
WRITE = "write"
RATE_CLASSES = (CREDENTIALS, READ, WRITE)


def is_public(route: Route) -> bool:
    """API.md § Conventions: every route needs `Authorization: Bearer` except those
    whose RPC is marked `option (klik.options.v1.public) = true;`."""
    public: bool = route.method.GetOptions().Extensions[_PUBLIC]
    return public


def rate_class(route: Route) -> str:
    if route.http_method == "GET":
        return READ
    return CREDENTIALS if is_public(route) else WRITE


def client_address(connection: HTTPConnection) -> str:
    """The client address the gateway vouches for (gateway.clientaddr)."""
    return scope_client_address(connection.scope)


USER_BUCKETS = "user:"  # prefix of the per-user classes in the RateLimiter
PREMIUM_BUCKETS = "premium:"  # the same for callers with the role `premium`
PREMIUM_ROLE = "premium"


def user_class(route_class: str) -> str:
    return USER_BUCKETS + route_class


def premium_class(route_class: str) -> str:
    return PREMIUM_BUCKETS + route_class


def bucket_draws(
    connection: HTTPConnection, route_class: str, user_id: str | None, role: str = ""
) -> list[tuple[str, str]]:
    """The buckets a request draws on, (limiter class, key) each; it is refused when
    any of them is empty. Every request draws on its client address; a signed-in one
    also on its user's bucket, so one user cannot multiply their limit by changing
    address (and users behind one NAT share only the address limit). A caller with
    the role `premium` draws on the premium per-user limits instead."""
    draws = [(route_class, f"addr:{client_address(connection)}")]
    if user_id is not None:
        per_user = premium_class if role == PREMIUM_ROLE else user_class
        draws.append((per_user(route_class), user_id))
    return draws
