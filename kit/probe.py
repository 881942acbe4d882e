"""`python -m kit health HOST:PORT [SERVICE]`: ask a server's grpc.health.v1 and exit
0 only when it answers SERVING. Used by compose, Kubernetes and operators."""

from __future__ import annotations

import asyncio
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check(address: str, service: str = "", within: float = 3.0) -> str:
    """The serving status name, or `UNREACHABLE: <reason>`."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=within)
        except grpc.aio.AioRpcError as error:
            return f"UNREACHABLE: {error.code().name} {error.details() or ''}".strip()
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m kit health HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    status = asyncio.run(check(argv[0], argv[1] if len(argv) == 2 else ""))
    print(status)
    return 0 if status == "SERVING" else 1
