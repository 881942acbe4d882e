"""Small helpers of the content tests."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
import pytest

from kit.errors import error_details

T = TypeVar("T")


async def failure(call: Awaitable[object]) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """The status code, ErrorInfo reason and metadata a call fails with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    info = error_details(error.trailing_metadata())
    assert info is not None, f"no ErrorInfo on {error.code()}: {error.details()}"
    return error.code(), info.reason, info.metadata
