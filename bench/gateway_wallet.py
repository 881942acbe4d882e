"""What the gateway costs: prints figures, asserts nothing.

    .venv/bin/python -m bench.gateway_wallet [--seconds 15] [--connections 32]
        [--client-processes 2]

Starts a nats-server, the real wallet service (`python -m services.wallet`, on a
fresh database at $KLIK_TEST_DATABASE_URL, SQLite when unreachable), a JWKS server
standing in for auth (tokens are verified locally after one fetch), the real gateway
(`python -m gateway`, rate limits off) and a bare HTTP -> gRPC proxy (a raw ASGI app
on the same uvicorn as the gateway, uvloop + httptools when installed, that forwards
`GET /v1/wallet` to the same wallet call with `json_format`, nothing else: no token
check, no limits, no metrics, no middleware), each its own process. Then, in one
run, one signed-in user's wallet read over `--connections` concurrent connections:
  - through the gateway, load from `wrk` (keep-alive HTTP/1.1, a Lua script for the
    Authorization header);
  - through the bare proxy, the same `wrk` run: the baseline;
  - directly over gRPC (WalletService.GetWallet), from `--client-processes` Python
    client processes sharing the connections;
in interleaved rounds (`--seconds` in all per target), and prints requests per
second, p50/p99 latency and the ratios. The client's CPU is printed beside each
figure (wrk's from its rusage, the client processes' own): far from its cores'
worth, the client is not what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.chart import write_chart
from bench.common import (
    Clients,
    Load,
    Row,
    Sample,
    closed_loop,
    levels,
    merge,
    run_wrk,
    table,
)
from kit import bus
from kit.config import SERVICE_PORTS
from klik.events.v1.events_pb2 import UserRegistered
from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.databases import Databases
from tests.helpers import envelope, free_port, publish_envelope
from tests.natsserver import NatsServer, nats_server_binary
from tests.tokens import TokenAuthority

USER = "bench-user-1"
ROUTE = "/v1/wallet"
ROUNDS = 3
OUT = Path(__file__).parent / "out"


def http_stack() -> str:
    """What uvicorn runs on here ("auto" in both the gateway and the bare proxy)."""
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    http = "httptools" if find_spec("httptools") else "h11"
    return f"uvicorn, {loop} + {http}"


# ---- the bare proxy (run in its own process: `--proxy PORT`) ---------------------------


def serve_proxy(port: int, wallet_address: str) -> None:
    import uvicorn
    from google.protobuf import json_format

    stub: wallet_pb2_grpc.WalletServiceStub | None = None
    json = [(b"content-type", b"application/json")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal stub
        assert scope["type"] == "http"
        status, body, headers = 404, b"", json
        if scope["path"] == "/healthz":
            status = 200
        elif scope["path"] == ROUTE:
            if stub is None:
                stub = wallet_pb2_grpc.WalletServiceStub(grpc.aio.insecure_channel(wallet_address))
            token = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            try:
                reply = await stub.GetWallet(
                    wallet_pb2.GetWalletRequest(), metadata=(("authorization", token.decode()),)
                )
                status = 200
                body = json_format.MessageToJson(
                    reply.wallet, preserving_proto_field_name=True
                ).encode()
            except grpc.aio.AioRpcError as error:
                status, body = 502, error.code().name.encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )


# ---- direct gRPC, from client processes ----------------------------------------------


def grpc_client(payload: tuple[str, str, int], start_at: float, seconds: float) -> Sample:
    """One client process: `concurrency` GetWallet calls in flight on one channel."""
    address, token, concurrency = payload

    async def go() -> Sample:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = wallet_pb2_grpc.WalletServiceStub(channel)
            request = wallet_pb2.GetWalletRequest()
            metadata = (("authorization", f"Bearer {token}"),)

            async def call() -> object:
                return await stub.GetWallet(request, metadata=metadata)

            await call()
            return await closed_loop(call, concurrency, start_at, seconds)

    return asyncio.run(go())


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


async def open_wallet(address: str, token: str, nats_url: str) -> None:
    """Announce the user as auth would; the wallet opens it from the event."""
    nc = await bus.connect(nats_url, name="bench")
    try:
        js = nc.jetstream()
        await bus.ensure_streams(js)
        await publish_envelope(js, envelope("user.registered", UserRegistered(user_id=USER)))
    finally:
        await nc.close()
    deadline = time.monotonic() + 60
    async with grpc.aio.insecure_channel(address) as channel:
        stub = wallet_pb2_grpc.WalletServiceStub(channel)
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


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_wallet")
    parser.add_argument("--seconds", type=float, default=15.0, help="per target, all rounds")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--sweep",
        type=levels,
        default=[1, 4, 16, 32, 64],
        help="connection counts for the latency-against-load chart ('' for none)",
    )
    parser.add_argument("--sweep-seconds", type=float, default=2.0, help="per level and target")
    parser.add_argument(
        "--hold", type=float, default=0.0, help="keep the stack up this long after (by hand)"
    )
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> list[Row]:
    authority = TokenAuthority()
    token = authority.access_token(USER, lifetime=3600)
    bearer = {"Authorization": f"Bearer {token}"}
    per_round = args.seconds / ROUNDS
    per_process = max(1, args.connections // args.client_processes)
    async with authority.serve() as jwks:
        with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
            async with processes(Path(tmp), jwks.port) as where:
                await open_wallet(where["wallet"], token, where["nats"])
                with Clients(args.client_processes) as clients:

                    async def http(
                        base: str, seconds: float, strict: bool = True, connections: int = 0
                    ) -> Load:
                        return await asyncio.to_thread(
                            run_wrk,
                            base + ROUTE,
                            seconds=seconds,
                            connections=connections or args.connections,
                            headers=bearer,
                            strict=strict,
                        )

                    async def direct(seconds: float, strict: bool = True) -> Load:
                        payload = (where["wallet"], token, per_process)
                        payloads = [payload] * args.client_processes
                        return await clients.run(grpc_client, payloads, seconds)

                    targets: dict[str, Callable[[float, bool], Awaitable[Load]]] = {
                        "gateway": partial(http, where["gateway"]),
                        "bare HTTP->gRPC proxy": partial(http, where["proxy"]),
                        "direct gRPC": direct,
                    }
                    for target in targets.values():  # warm up: connections, JWKS, caches
                        await target(2.0, False)
                    # Interleaved rounds: a neighbour's load on the machine falls on all
                    # three alike, not on whichever happened to run then.
                    rounds: dict[str, list[Load]] = {name: [] for name in targets}
                    for _ in range(ROUNDS):
                        for name, target in targets.items():
                            rounds[name].append(await target(per_round, True))
                    # Latency against load: each connection count on both HTTP targets.
                    swept: dict[str, list[Load]] = {"gateway": [], "bare proxy": []}
                    for level in args.sweep:
                        for name, base in (("gateway", "gateway"), ("bare proxy", "proxy")):
                            load = await http(where[base], args.sweep_seconds, True, level)
                            swept[name].append(load)
                            print(load.line(f"sweep: {name}, {level} conns"), flush=True)
                if args.hold:
                    print(f"holding {args.hold:.0f} s: gateway {where['gateway']}{ROUTE}")
                    print(f"Authorization: Bearer {token}", flush=True)
                    await asyncio.sleep(args.hold)
    loads = {name: merge(runs) for name, runs in rounds.items()}
    if args.sweep:
        series = {
            f"{name} {cut}": [
                (load.rate, load.p50_ms if cut == "p50" else load.p99_ms) for load in runs
            ]
            for name, runs in swept.items()
            for cut in ("p50", "p99")
        }
        print(
            write_chart(OUT / "gateway_wallet_latency.png", series)
            + f"; x: req/s achieved (wrk, {', '.join(map(str, args.sweep))} connections), "
            f"y: GET {ROUTE} latency, ms"
        )
    print(
        f"GET {ROUTE} (one signed-in user), {args.connections} connections, "
        f"{args.seconds:.0f} s per target in {ROUNDS} interleaved rounds, "
        f"{os.cpu_count()} cores; HTTP load from wrk, gRPC load from "
        f"{args.client_processes} client processes; servers on {http_stack()}"
    )
    for name, load in loads.items():
        print(load.line(name))
    gateway, proxy, direct_ = loads["gateway"], loads["bare HTTP->gRPC proxy"], loads["direct gRPC"]
    print(ratios("gateway / bare proxy", gateway, proxy))
    print(ratios("gateway / direct gRPC", gateway, direct_))
    return [
        Row(
            f"gateway GET {ROUTE}, {args.connections} conns (wrk)",
            gateway.rate,
            "req/s",
            proxy.rate,
            "bare HTTP->gRPC proxy",
            gateway.client,
        ),
        Row("  ... p99", gateway.p99_ms, "ms", proxy.p99_ms, "bare proxy p99", ""),
        Row(
            "bare proxy / direct gRPC GetWallet",
            proxy.rate,
            "req/s",
            direct_.rate,
            f"direct gRPC, {args.client_processes} procs",
            direct_.client,
        ),
    ]


def ratios(what: str, a: Load, b: Load) -> str:
    return (
        f"{what}: {a.rate / b.rate:.2f}x throughput, "
        f"{a.p50_ms / b.p50_ms:.2f}x p50, {a.p99_ms / b.p99_ms:.2f}x p99"
    )


def rows(argv: Sequence[str] = ()) -> list[Row]:
    return asyncio.run(measure(parse(argv)))


if __name__ == "__main__":
    if "--proxy" in sys.argv:
        serve_proxy(int(sys.argv[sys.argv.index("--proxy") + 1]), os.environ["BENCH_WALLET_ADDR"])
    else:
        print(table(rows(sys.argv[1:])))
