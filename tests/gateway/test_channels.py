"""One long-lived channel per upstream, balanced round robin over the replicas that
`KLIK_<SERVICE>_ADDR` lists (kit.rpc does the balancing; this checks the gateway
uses it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.gateway.fakes import StartGateway, Upstream
from tests.helpers import wait_for


class CountingWallet(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self) -> None:
        self.calls = 0

    async def GetWallet(self, request: Any, context: Any) -> wallet_pb2.GetWalletResponse:
        self.calls += 1
        return wallet_pb2.GetWalletResponse(wallet=wallet_pb2.Wallet(user_id="u-1"))


@pytest.fixture
async def replicas() -> AsyncIterator[list[tuple[str, CountingWallet]]]:
    running = []
    for _ in range(2):
        server = grpc.aio.server()
        wallet = CountingWallet()
        wallet_pb2_grpc.add_WalletServiceServicer_to_server(wallet, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        running.append((server, f"127.0.0.1:{port}", wallet))
    yield [(address, wallet) for _, address, wallet in running]
    for server, _, _ in running:
        await server.stop(0)


async def test_calls_are_spread_over_every_replica(
    start_gateway: StartGateway,
    upstream: Upstream,
    replicas: list[tuple[str, CountingWallet]],
) -> None:
    addresses = ",".join(address for address, _ in replicas)
    gateway = await start_gateway(KLIK_WALLET_ADDR=addresses)

    async def both_called() -> bool:
        assert (await gateway.get("/v1/wallet")).status_code == 200
        return all(wallet.calls > 0 for _, wallet in replicas)

    await wait_for(both_called, message="every replica called")
    before = [wallet.calls for _, wallet in replicas]
    for _ in range(10):
        assert (await gateway.get("/v1/wallet")).status_code == 200
    spread = [wallet.calls - old for (_, wallet), old in zip(replicas, before, strict=True)]
    assert spread == [5, 5]  # round robin, not pick-first
