"""gRPC servicers of the content service: proto ⇄ domain. RPCs not overridden here
answer UNIMPLEMENTED (the generated base class raises NotImplementedError)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from kit.server import Resources
from klik.content.v1 import content_pb2, content_pb2_grpc


class ContentApi(content_pb2_grpc.ContentServiceServicer):
    """klik.content.v1.ContentService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources


def register(server: grpc.aio.Server, resources: Resources) -> Sequence[str]:
    content_pb2_grpc.add_ContentServiceServicer_to_server(ContentApi(resources), server)
    return (content_pb2.DESCRIPTOR.services_by_name["ContentService"].full_name,)
