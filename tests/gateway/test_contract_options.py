"""A new public RPC and a new event type need no edit outside their proto.

tests/gateway/protos/test_options.proto declares a throwaway service (a public RPC, and
a bearer RPC whose reason `NO_TEA` is HTTP 418) and two event payloads (one marked
`streamed`). A gateway given just those descriptors, as it is given klik's, serves the
public route without a token, marks it public in its OpenAPI document, answers the
reason with its status, and streams the new event type on /v1/events, while the other
stays off the stream. Nothing in gateway/ or kit/ names any of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any, cast

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from nats.js import JetStreamContext

from gateway.contracts import EVENT_FILES, PUBLIC_SERVICES
from gateway.errors import reason_statuses
from gateway.transcoding.routes import build_routes
from kit import errors
from kit.bus import event_type_of
from klik.events.v1.events_pb2 import WalletChanged
from klik.options.v1 import options_pb2
from tests.gateway.fakes import StartGateway, Upstream, error_of
from tests.gateway.test_events import js, open_stream  # noqa: F401 - js is a fixture
from tests.helpers import envelope, publish_envelope, unique


@pytest.fixture
async def throwaway_server(throwaway: ModuleType) -> AsyncIterator[str]:
    """A gRPC server of the throwaway service; its address."""

    async def ping(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return throwaway.PingResponse(greeting=f"hello {request.name}")

    async def brew(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        refusal = errors.FailedPrecondition("NO_TEA", f"no {request.drink} here")
        await context.abort_with_status(errors.domain_status(refusal))

    def handler(method: Any, name: str) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(
            method,
            request_deserializer=getattr(throwaway, f"{name}Request").FromString,
            response_serializer=getattr(throwaway, f"{name}Response").SerializeToString,
        )

    methods = {"Ping": handler(ping, "Ping"), "Brew": handler(brew, "Brew")}
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("optionstest.v1.Throwaway", methods),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_a_throwaway_public_rpc_and_event_type_are_served_from_their_proto(
    start_gateway: StartGateway,
    upstream: Upstream,
    throwaway: ModuleType,
    throwaway_server: str,
    js: JetStreamContext,  # noqa: F811 - the fixture imported above
) -> None:
    service = throwaway.DESCRIPTOR.services_by_name["Throwaway"]
    gateway = await start_gateway(
        services={"generation": (service,)},
        events=(*EVENT_FILES, throwaway.DESCRIPTOR),
        KLIK_GENERATION_ADDR=throwaway_server,
    )
    anonymous = httpx.AsyncClient(base_url=gateway.base_url, timeout=10)
    try:
        # The public RPC: routed, and answered without a token.
        reply = await anonymous.get("/v1/throwaway/ping", params={"name": "ada"})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"greeting": "hello ada"}
        # The other needs one; with it, its reason comes back with its own status.
        refused = await anonymous.post("/v1/throwaway/brew", json={"drink": "tea"})
        assert refused.status_code == 401
        error_of(refused, "UNAUTHENTICATED", "UNAUTHENTICATED")
        brewed = await gateway.post("/v1/throwaway/brew", json={"drink": "tea"})
        assert brewed.status_code == 418
        assert error_of(brewed, "NO_TEA", "FAILED_PRECONDITION")["message"] == "no tea here"
    finally:
        await anonymous.aclose()

    # The API document: the public operation needs no token, the other the default
    # bearer, with a response for its reason's status.
    spec = (await gateway.get("/openapi.json")).json()
    ping = spec["paths"]["/v1/throwaway/ping"]["get"]
    brew = spec["paths"]["/v1/throwaway/brew"]["post"]
    assert ping["security"] == []
    assert "security" not in brew
    assert spec["security"] == [{"bearer": []}]
    assert "NO_TEA" in brew["responses"]["418"]["description"]
    stream_doc = spec["paths"]["/v1/events"]["get"]["description"]
    assert "`throwaway.happened`" in stream_doc and "throwaway.hidden" not in stream_doc

    # The event stream passes the streamed type (and klik's own), not the other.
    user = unique("ada-")
    async with open_stream(gateway, upstream.auth.authority.access_token(user)) as stream:
        for payload in (
            throwaway.ThrowawayHidden(note="hidden"),
            throwaway.ThrowawayHappened(note="happened"),
            WalletChanged(user_id=user, balance=5),
        ):
            event = envelope(event_type_of(payload), payload)
            event.user_id = user
            await publish_envelope(js, event)
        events = await stream.take(2)
    assert [e.event for e in events] == ["throwaway.happened", "wallet.changed"]
    assert events[0].data["payload"]["note"] == "happened"
    assert events[0].data["payload"]["@type"].endswith("optionstest.v1.ThrowawayHappened")


class _Method:
    """Just what reason_statuses reads of a method descriptor."""

    def __init__(self, full_name: str, *declared: tuple[str, int]) -> None:
        self.full_name = full_name
        self._options = descriptor_pb2.MethodOptions()
        for reason, status in declared:
            statuses: Any = self._options.Extensions[cast(Any, options_pb2.reason_status)]
            statuses.add(reason=reason, http_status=status)

    def GetOptions(self) -> descriptor_pb2.MethodOptions:
        return self._options


def test_a_reason_has_one_http_status_whichever_rpc_declares_it() -> None:
    routed = [route.method for route in build_routes(PUBLIC_SERVICES)]
    assert reason_statuses(routed) == {"INSUFFICIENT_CREDITS": 402, "UPLOAD_TOO_LARGE": 413}
    agreeing = [_Method("a.A", ("NO_TEA", 418)), _Method("b.B", ("NO_TEA", 418), ("X", 402))]
    assert reason_statuses(cast(Any, agreeing)) == {"NO_TEA": 418, "X": 402}
    clashing = [_Method("a.A", ("NO_TEA", 418)), _Method("b.B", ("NO_TEA", 400))]
    with pytest.raises(ValueError, match=r"b\.B answers NO_TEA with 400, a\.A with 418"):
        reason_statuses(cast(Any, clashing))
