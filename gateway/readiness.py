"""What `/readyz` checks: every upstream service answers SERVING on grpc.health.v1
and the event bus is connected."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client as Nats

CHECK_TIMEOUT_SECONDS = 1.0


async def service_state(channel: grpc.aio.Channel) -> str:
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=CHECK_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError as error:
        return f"UNREACHABLE ({error.code().name})"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def dependency_states(
    channels: Mapping[str, grpc.aio.Channel], nats: Nats | None
) -> dict[str, str]:
    names = list(channels)
    states = await asyncio.gather(*(service_state(channels[name]) for name in names))
    result = dict(zip(names, states, strict=True))
    result["nats"] = "CONNECTED" if nats is not None and nats.is_connected else "DISCONNECTED"
    return result


def all_ready(states: Mapping[str, str]) -> bool:
    return all(state in ("SERVING", "CONNECTED") for state in states.values())
