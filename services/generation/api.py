"""gRPC servicers of the generation service: proto ⇄ domain. RPCs not overridden here
answer UNIMPLEMENTED (the generated base class raises NotImplementedError)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from kit.server import Resources
from klik.generation.v1 import generation_pb2, generation_pb2_grpc


class GenerationApi(generation_pb2_grpc.GenerationServiceServicer):
    """klik.generation.v1.GenerationService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources


def register(server: grpc.aio.Server, resources: Resources) -> Sequence[str]:
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(GenerationApi(resources), server)
    return (generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name,)
