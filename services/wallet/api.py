"""gRPC servicers of the wallet service: proto ⇄ domain. RPCs not overridden here
answer UNIMPLEMENTED (the generated base class raises NotImplementedError)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from kit.server import Resources
from klik.wallet.v1 import holds_pb2, holds_pb2_grpc, wallet_pb2, wallet_pb2_grpc


class WalletApi(wallet_pb2_grpc.WalletServiceServicer):
    """klik.wallet.v1.WalletService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources


class HoldApi(holds_pb2_grpc.HoldServiceServicer):
    """klik.wallet.v1.HoldService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources


def register(server: grpc.aio.Server, resources: Resources) -> Sequence[str]:
    wallet_pb2_grpc.add_WalletServiceServicer_to_server(WalletApi(resources), server)
    holds_pb2_grpc.add_HoldServiceServicer_to_server(HoldApi(resources), server)
    return (
        wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name,
        holds_pb2.DESCRIPTOR.services_by_name["HoldService"].full_name,
    )
