"""What access tokens and logins cost: prints figures, asserts nothing.

  .venv/bin/python -m bench.auth_tokens [--seconds 3] [--concurrency 16]

- access tokens verified per second, one core: kit.tokens.TokenVerifier with a warm
  JWKS cache, as every service verifies each call's token (EdDSA / Ed25519);
- access tokens signed per second, one core (services.auth.keys.mint_access_token);
- logins per second through real gRPC against the real auth service on a fresh
  database at $KLIK_TEST_DATABASE_URL (SQLite when unreachable) and a throwaway
  nats-server. Bound by argon2id, whose parameters are printed: each login verifies
  one hash, using `memory_kib` of RAM and about `time_cost` passes over it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from kit.config import ServiceSettings
from kit.identity import generate_keys
from kit.server import Server
from kit.tokens import TokenVerifier
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from services.auth.keys import SigningKey, mint_access_token
from services.auth.service import make_spec
from services.auth.settings import AuthOptions
from tests.databases import Databases, backend
from tests.helpers import free_port
from tests.natsserver import NatsServer, nats_server_binary

PASSWORD = "bench password, long enough"


def signing_key() -> SigningKey:
    return SigningKey("bench", Ed25519PrivateKey.generate())


def mint(key: SigningKey) -> str:
    return mint_access_token(
        key,
        issuer="klik-auth",
        audience="klik",
        subject="user-1",
        role="user",
        session_id="session-1",
        issued_at=datetime.now(UTC),
        ttl_seconds=900,
    )


def rate(count: int, elapsed: float) -> str:
    return f"{count / elapsed:,.0f}/s"


async def verify_rate(seconds: float) -> tuple[int, float]:
    key = signing_key()
    jwk = {**OKPAlgorithm.to_jwk(key.key.public_key(), as_dict=True), "kid": key.kid}

    async def jwks() -> Sequence[Mapping[str, str]]:
        return [{**jwk, "alg": "EdDSA", "use": "sig"}]

    verifier = TokenVerifier(jwks)
    tokens = [mint(key) for _ in range(1000)]
    await verifier.verify(tokens[0])  # warm the cache
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for token in tokens:
            await verifier.verify(token)
        count += len(tokens)
    return count, time.perf_counter() - started


def sign_rate(seconds: float) -> tuple[int, float]:
    key = signing_key()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(500):
            mint(key)
        count += 500
    return count, time.perf_counter() - started


async def login_rate(
    database_url: str, nats_url: str, keys: Path, seconds: float, concurrency: int
) -> tuple[int, float, list[float], AuthOptions]:
    env = {"KLIK_AUTH_PORT": str(free_port()), "KLIK_SERVICE_KEYS_DIR": str(keys)}
    options = AuthOptions.from_env(env)
    settings = dataclasses.replace(
        ServiceSettings.from_env("auth", env=env),
        metrics_port=0,
        database_url=database_url,
        nats_url=nats_url,
    )
    server = Server(make_spec(options), settings)
    await server.start()
    await asyncio.wait_for(server.ready.wait(), 30)
    latencies: list[float] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            emails = [f"bench{i}@example.com" for i in range(concurrency)]
            for email in emails:
                await stub.Register(
                    auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="B")
                )
            stop = time.perf_counter() + seconds

            async def client(email: str) -> None:
                # Each client logs into its own account (no throttling in play).
                while time.perf_counter() < stop:
                    began = time.perf_counter()
                    await stub.Login(
                        auth_pb2.LoginRequest(email=email, password=PASSWORD), timeout=30
                    )
                    latencies.append(time.perf_counter() - began)

            started = time.perf_counter()
            await asyncio.gather(*(client(email) for email in emails))
            elapsed = time.perf_counter() - started
    finally:
        await server.shutdown()
    return len(latencies), elapsed, latencies, options


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}; database: {backend().describe()}")

    count, elapsed = await verify_rate(args.seconds)
    print(
        f"access tokens verified (TokenVerifier, warm JWKS cache, 1 core): {rate(count, elapsed)}"
    )
    count, elapsed = sign_rate(args.seconds)
    print(f"access tokens signed (EdDSA, 1 core): {rate(count, elapsed)}")

    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(nats_server_binary(), free_port(), Path(tmp) / "js", Path(tmp) / "log")
        nats.start()
        databases = Databases(Path(tmp))
        keys = Path(tmp) / "keys"
        generate_keys(keys, ["auth"])
        try:
            count, elapsed, latencies, options = await login_rate(
                databases.create(), nats.url, keys, args.seconds, args.concurrency
            )
        finally:
            databases.drop_all()
            nats.stop()
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"logins through gRPC ({options.argon2.describe()}, {args.concurrency} clients, "
        f"one server process): {rate(count, elapsed)}, "
        f"latency p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
