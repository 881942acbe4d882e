"""What the gateway costs: prints figures, asserts nothing.

    .venv/bin/python -m bench.gateway_wallet [--requests 4000] [--connections 32]

Starts a nats-server, the real wallet service (`python -m services.wallet`, on a
fresh database at $KLIK_TEST_DATABASE_URL, SQLite when unreachable), a JWKS server
standing in for auth (tokens are verified locally after one fetch), the real gateway
(`python -m gateway`, rate limits off) and a bare HTTP -> gRPC proxy (a minimal
starlette app on uvicorn that forwards `GET /v1/wallet` to the same wallet call with
`json_format`, nothing else: no token check, no limits, no metrics), each its own
process. Then, in one run, one signed-in user's wallet read `--requests` times over
`--connections` concurrent connections:
  - directly over gRPC (WalletService.GetWallet on one channel);
  - through the bare proxy (HTTP/1.1 keep-alive connections);
  - through the gateway (the same client);
in interleaved rounds, and prints requests per second, p50/p99 latency and the
ratios. The load generator is one Python process too; its CPU share is printed,
since on a small machine the client, the proxy and the wallet share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

from kit import bus
from kit.config import SERVICE_PORTS
from klik.events.v1.events_pb2 import UserRegistered
from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.databases import Databases
from tests.helpers import envelope, free_port, publish_envelope
from tests.natsserver import NatsServer, nats_server_binary
from tests.tokens import TokenAuthority

USER = "bench-user-1"
ROUNDS = 4


@dataclass(frozen=True)
class Figures:
    rate: float
    p50_ms: float
    p99_ms: float
    client_cpu: float  # the load generator's CPU time over wall time

    def line(self, what: str) -> str:
        return (
            f"{what:<34} {self.rate:>7,.0f} req/s  p50 {self.p50_ms:6.2f} ms  "
            f"p99 {self.p99_ms:6.2f} ms  client CPU {self.client_cpu:4.0%}"
        )


@dataclass
class Run:
    """Latencies and time spent over one or more rounds of the same call."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    cpu: float = 0.0

    def figures(self) -> Figures:
        cuts = statistics.quantiles(self.latencies, n=100)
        rate = len(self.latencies) / self.elapsed
        return Figures(rate, cuts[49] * 1e3, cuts[98] * 1e3, self.cpu / self.elapsed)


async def drive(
    total: int, concurrency: int, call: Callable[[], Awaitable[None]], run: Run
) -> None:
    """`total` calls on `concurrency` workers, recorded into `run`."""
    counter = iter(range(total))

    async def worker() -> None:
        for _ in counter:
            started = time.perf_counter()
            await call()
            run.latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed += time.perf_counter() - started
    run.cpu += time.process_time() - cpu


class KeepAliveClient:
    """`connections` persistent HTTP/1.1 connections, one request at a time on each:
    a load generator far lighter than httpx, so the servers are what is measured."""

    def __init__(self, url: str, connections: int, headers: dict[str, str]) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.count = connections
        lines = [f"{k}: {v}" for k, v in {"Host": self.host, **headers}.items()]
        self.request = ("GET /v1/wallet HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def open(self) -> None:
        for _ in range(self.count):
            self.idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()

    async def get_wallet(self) -> None:
        reader, writer = await self.idle.get()
        try:
            writer.write(self.request)
            status = await reader.readline()
            if not status:  # the server closed an idle connection: open another
                writer.close()
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(self.request)
                status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if status.split()[1] != b"200":
                raise SystemExit(f"{self.port}: {status.decode().strip()}")
        finally:
            self.idle.put_nowait((reader, writer))


# ---- the bare proxy (run in its own process: `--proxy PORT WALLET_ADDRESS`) ----------


def serve_proxy(port: int, wallet_address: str) -> None:
    import uvicorn
    from google.protobuf import json_format
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    channel: grpc.aio.Channel | None = None

    async def get_wallet(request: Request) -> Response:
        nonlocal channel
        if channel is None:
            channel = grpc.aio.insecure_channel(wallet_address)
        stub = wallet_pb2_grpc.WalletServiceStub(channel)
        metadata = (("authorization", request.headers.get("authorization", "")),)
        try:
            reply = await stub.GetWallet(wallet_pb2.GetWalletRequest(), metadata=metadata)
        except grpc.aio.AioRpcError as error:
            return Response(error.code().name, status_code=502)
        body = json_format.MessageToJson(reply.wallet, preserving_proto_field_name=True)
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/v1/wallet", get_wallet)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---- the processes --------------------------------------------------------------------


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_http(url: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within {within:.0f} s")
            await asyncio.sleep(0.2)


async def open_wallet(stub: wallet_pb2_grpc.WalletServiceStub, token: str, nats_url: str) -> None:
    """Announce the user as auth would; the wallet opens it from the event."""
    nc = await bus.connect(nats_url, name="bench")
    try:
        js = nc.jetstream()
        await bus.ensure_streams(js)
        await publish_envelope(js, envelope("user.registered", UserRegistered(user_id=USER)))
    finally:
        await nc.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            await stub.GetWallet(
                wallet_pb2.GetWalletRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=2,
            )
            return
        except grpc.aio.AioRpcError as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"the wallet never opened: {error.code().name}") from None
            await asyncio.sleep(0.2)


@asynccontextmanager
async def processes(root: Path, jwks_port: int) -> AsyncIterator[dict[str, str]]:
    """nats, wallet, gateway, proxy; yields their addresses."""
    nats = NatsServer(nats_server_binary(), free_port(), root / "nats", root / "nats.log")
    nats.start()
    databases = Databases(root / "sqlite")
    wallet_port, gateway_port, proxy_port = free_port(), free_port(), free_port()
    wallet_address = f"127.0.0.1:{wallet_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLIK_")}
    env.update(
        KLIK_VAR_DIR=str(root / "var"),
        KLIK_NATS_URL=nats.url,
        KLIK_LOG_LEVEL="WARNING",
        KLIK_AUTH_ADDR=f"127.0.0.1:{jwks_port}",
        KLIK_WALLET_PORT=str(wallet_port),
        KLIK_WALLET_METRICS_PORT="0",
        KLIK_WALLET_DATABASE_URL=databases.create(),
        KLIK_GATEWAY_PORT=str(gateway_port),
        KLIK_WALLET_ADDR=wallet_address,
        KLIK_GATEWAY_RATE_READ="0",
        KLIK_GATEWAY_USER_RATE_READ="0",
    )
    for service in SERVICE_PORTS:  # nothing listens there; only wallet and auth are used
        env.setdefault(f"KLIK_{service.upper()}_ADDR", f"127.0.0.1:{free_port()}")
    children = [
        spawn([sys.executable, "-m", "services.wallet"], env, root / "wallet.log"),
        spawn([sys.executable, "-m", "gateway"], env, root / "gateway.log"),
        spawn(
            [sys.executable, "-m", "bench.gateway_wallet", "--proxy", str(proxy_port)],
            {**env, "BENCH_WALLET_ADDR": wallet_address},
            root / "proxy.log",
        ),
    ]
    try:
        await wait_http(f"http://127.0.0.1:{gateway_port}/healthz")
        await wait_http(f"http://127.0.0.1:{proxy_port}/healthz")
        yield {
            "wallet": wallet_address,
            "gateway": f"http://127.0.0.1:{gateway_port}",
            "proxy": f"http://127.0.0.1:{proxy_port}",
            "nats": nats.url,
        }
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)
        databases.drop_all()
        nats.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--proxy", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    authority = TokenAuthority()
    token = authority.access_token(USER, lifetime=3600)
    bearer = {"Authorization": f"Bearer {token}"}
    metadata = (("authorization", f"Bearer {token}"),)
    async with authority.serve() as jwks:
        with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
            async with processes(Path(tmp), jwks.port) as where:
                channel = grpc.aio.insecure_channel(where["wallet"])
                stub = wallet_pb2_grpc.WalletServiceStub(channel)
                await open_wallet(stub, token, where["nats"])
                proxy = KeepAliveClient(where["proxy"], args.connections, bearer)
                gateway = KeepAliveClient(where["gateway"], args.connections, bearer)
                await proxy.open()
                await gateway.open()

                async def direct() -> None:
                    await stub.GetWallet(wallet_pb2.GetWalletRequest(), metadata=metadata)

                calls = {
                    "direct gRPC": direct,
                    "bare HTTP->gRPC proxy": proxy.get_wallet,
                    "gateway": gateway.get_wallet,
                }
                for call in calls.values():  # warm up: connections, JWKS, caches
                    await drive(min(500, args.requests), args.connections, call, Run())
                # Interleaved rounds: a neighbour's load on the machine falls on all
                # three alike, not on whichever happened to run then.
                runs = {name: Run() for name in calls}
                for _ in range(ROUNDS):
                    for name, call in calls.items():
                        await drive(args.requests // ROUNDS, args.connections, call, runs[name])
                figures = {name: run.figures() for name, run in runs.items()}
                await proxy.close()
                await gateway.close()
                await channel.close()
    print(
        f"GET /v1/wallet (one signed-in user), {args.requests} requests, "
        f"{args.connections} concurrent connections, {os.cpu_count()} cores"
    )
    for name, result in figures.items():
        print(result.line(name))
    direct_f, proxy_f, gateway_f = (figures[name] for name in calls)
    print(ratios("gateway / bare proxy", gateway_f, proxy_f))
    print(ratios("gateway / direct gRPC", gateway_f, direct_f))


def ratios(what: str, a: Figures, b: Figures) -> str:
    return (
        f"{what}: {a.rate / b.rate:.2f}x throughput, "
        f"{a.p50_ms / b.p50_ms:.2f}x p50, {a.p99_ms / b.p99_ms:.2f}x p99"
    )


if __name__ == "__main__":
    if "--proxy" in sys.argv:
        serve_proxy(int(sys.argv[sys.argv.index("--proxy") + 1]), os.environ["BENCH_WALLET_ADDR"])
    else:
        asyncio.run(main())
