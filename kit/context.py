"""Per-call context carried by contextvars: the request id and the caller's deadline.

Set by the gRPC server interceptor (or the gateway) at the start of a call; read by
logging, the outbox (events remember which request caused them) and outgoing gRPC
clients (which forward both)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
# Absolute deadline of the call being served, on the event loop's monotonic clock.
deadline_var: ContextVar[float | None] = ContextVar("deadline", default=None)


# Ids from outside are echoed into logs and headers: keep them short and inert.
_REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(offered: str | None) -> str:
    """The caller's request id when it is well-formed, else a new one."""
    if offered and _REQUEST_ID_SHAPE.match(offered):
        return offered
    return new_request_id()


def current_request_id() -> str:
    return request_id_var.get()
