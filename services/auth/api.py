"""gRPC servicers of the auth service: proto ⇄ domain. RPCs not overridden here
answer UNIMPLEMENTED (the generated base class raises NotImplementedError)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from kit.server import Resources
from klik.auth.v1 import auth_pb2, auth_pb2_grpc


class AuthApi(auth_pb2_grpc.AuthServiceServicer):
    """klik.auth.v1.AuthService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources


def register(server: grpc.aio.Server, resources: Resources) -> Sequence[str]:
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthApi(resources), server)
    return (auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,)
