"""A failed call, as the gateway reports it: `{"error": {code, status, message, details,
request_id}}` on every non-2xx answer."""

from __future__ import annotations

from typing import Any

import httpx


class KlikError(Exception):
    """A non-2xx answer from klik: `code` the stable reason (e.g. `INSUFFICIENT_CREDITS`),
    `status` the gRPC status name, `http_status` the HTTP one, `message` in words."""

    def __init__(
        self,
        http_status: int,
        code: str,
        status: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(f"{code} ({http_status}): {message}")
        self.http_status = http_status
        self.code = code
        self.status = status
        self.message = message
        self.details = details or {}
        self.request_id = request_id

    @classmethod
    def from_response(cls, response: httpx.Response) -> KlikError:
        try:
            error = response.json()["error"]
            return cls(
                response.status_code,
                str(error.get("code") or error.get("status") or "UNKNOWN"),
                str(error.get("status") or "UNKNOWN"),
                str(error.get("message") or ""),
                details=dict(error.get("details") or {}),
                request_id=str(error.get("request_id") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(
                response.status_code,
                f"HTTP_{response.status_code}",
                "UNKNOWN",
                response.reason_phrase or "unexpected answer",
            )
