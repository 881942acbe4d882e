"""The one server interceptor every klik service runs.

Per call it: takes the request id from metadata (or makes one) and puts it in the
logging context; remembers the caller's deadline so outgoing calls propagate it;
refuses new calls while the server is starting or draining; refuses requests with
NUL characters in text (kit.text); maps `DomainError` to a
status with `google.rpc.ErrorInfo`, a lost database connection (kit.db.is_disconnect)
to UNAVAILABLE (retryable: never a 500) and any other exception to a bare INTERNAL;
and records per-RPC metrics."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from kit import db, errors
from kit.context import accept_request_id, deadline_var, request_id_var
from kit.gate import CallGate
from kit.metrics import RPC_HANDLED, RPC_IN_FLIGHT, RPC_SECONDS
from kit.text import check_request_text

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"
# Infrastructure that must answer even while the server refuses work.
_ALWAYS_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


def request_id_from(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    offered = dict(context.invocation_metadata() or ()).get(REQUEST_ID_KEY)
    return accept_request_id(offered if isinstance(offered, str) else None)


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    def __init__(self, gate: CallGate) -> None:
        self.gate = gate

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_ALWAYS_OPEN):
            return handler
        service, _, name = method.lstrip("/").partition("/")
        labels = (service, name)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, labels),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, labels),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Client-streaming RPCs: none in the contracts; pass through unwrapped.
        return handler

    def _unary(self, behavior: Behavior, labels: tuple[str, str]) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._around(context, labels):
                check_request_text(request)
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result

        return call

    def _streaming(self, behavior: Behavior, labels: tuple[str, str]) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._around(context, labels):
                check_request_text(request)
                async for item in behavior(request, context):
                    yield item

        return call

    def _around(
        self, context: grpc.aio.ServicerContext[Any, Any], labels: tuple[str, str]
    ) -> _CallScope:
        return _CallScope(self.gate, context, labels)


class _CallScope:
    """Everything that happens around one call, as an async context manager so the
    unary and streaming wrappers share it."""

    def __init__(
        self,
        gate: CallGate,
        context: grpc.aio.ServicerContext[Any, Any],
        labels: tuple[str, str],
    ) -> None:
        self.gate = gate
        self.context = context
        self.labels = labels
        self.request_id = request_id_from(context)
        self.started = 0.0
        self.admitted = False

    async def __aenter__(self) -> None:
        request_id_var.set(self.request_id)
        remaining = self.context.time_remaining()
        deadline_var.set(None if remaining is None else time.monotonic() + remaining)
        self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))
        self.started = time.perf_counter()
        refusal = self.gate.refusal()
        if refusal is not None:
            self._observe(grpc.StatusCode.UNAVAILABLE)
            await self.context.abort_with_status(
                errors.plain_status(grpc.StatusCode.UNAVAILABLE, refusal, self.request_id)
            )
        self.gate.enter()
        self.admitted = True
        RPC_IN_FLIGHT.inc()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> bool:
        try:
            return await self._settle(exc)
        finally:
            RPC_IN_FLIGHT.dec()
            self.gate.leave()

    async def _settle(self, exc: BaseException | None) -> bool:
        if exc is None:
            self._observe(grpc.StatusCode.OK)
            return False
        if isinstance(exc, errors.DomainError):
            self._observe(exc.code)
            await self.context.abort_with_status(errors.domain_status(exc, self.request_id))
        if isinstance(exc, grpc.aio.AbortError):
            # The handler aborted by itself; its code is already on the context.
            self._observe(self.context.code() or grpc.StatusCode.UNKNOWN)
            return False
        if isinstance(exc, asyncio.CancelledError):
            self._observe(grpc.StatusCode.CANCELLED)
            return False
        if isinstance(exc, NotImplementedError):
            # The generated base servicer raises this for RPCs not built yet.
            self._observe(grpc.StatusCode.UNIMPLEMENTED)
            await self.context.abort_with_status(
                errors.plain_status(
                    grpc.StatusCode.UNIMPLEMENTED, "method not implemented", self.request_id
                )
            )
        if db.is_disconnect(exc):
            log.warning("database connection lost in %s/%s: %s", *self.labels, exc)
            self._observe(grpc.StatusCode.UNAVAILABLE)
            await self.context.abort_with_status(errors.database_unavailable(self.request_id))
        log.error("unhandled exception in %s/%s", *self.labels, exc_info=exc)
        self._observe(grpc.StatusCode.INTERNAL)
        await self.context.abort_with_status(errors.internal_status(self.request_id))
        return False  # unreachable: abort_with_status raises

    def _observe(self, code: grpc.StatusCode) -> None:
        RPC_HANDLED.labels(*self.labels, code.name).inc()
        RPC_SECONDS.labels(*self.labels).observe(time.perf_counter() - self.started)
