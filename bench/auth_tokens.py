"""What access tokens and logins cost: prints figures, asserts nothing.

  .venv/bin/python -m bench.auth_tokens [--seconds 3] [--concurrency 16]
      [--client-processes 2]

- access tokens verified per second, one core: kit.tokens.TokenVerifier with a warm
  JWKS cache, as every service verifies each call's token (EdDSA / Ed25519), beside
  the bare Ed25519 signature check of the same tokens (cryptography) on that core;
- access tokens checked per second, one core, as a service checks its callers'
  tokens: the verifier's cache of tokens that verified (kit.tokens), revoked users
  looked up on every check; beside the uncached verification above;
- access tokens signed per second, one core (services.auth.keys.mint_access_token),
  beside the bare Ed25519 signature of the same signing input;
- logins per second through real gRPC against the real auth service (in this
  process) on a fresh database at $KLIK_TEST_DATABASE_URL (SQLite when unreachable)
  and a throwaway nats-server, `--concurrency` logins in flight from
  `--client-processes` client processes (their CPU share printed). Bound by
  argon2id, whose parameters are printed: each login verifies one hash, using
  `memory_kib` of RAM and about `time_cost` passes over it; the baseline is the
  service's own password verification (services.auth.passwords) alone, one per core
  at once, no gRPC and no database.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from bench.common import CORES, Clients, Load, Row, Sample, closed_loop, table
from kit.callers import RevokedUsers
from kit.config import ServiceSettings
from kit.identity import generate_keys
from kit.server import Server
from kit.tokens import TokenVerifier
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from services.auth import kek
from services.auth.keys import SigningKey, mint_access_token
from services.auth.passwords import Passwords
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


def repeat(seconds: float, batch: Callable[[], int]) -> float:
    """`batch()` (returning how many it did) again and again for `seconds`: per second."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        count += batch()
    return count / (time.perf_counter() - started)


def raw_rates(seconds: float) -> tuple[float, float]:
    """Bare Ed25519 verifications and signatures per second of the same tokens."""
    key = signing_key()
    public = key.key.public_key()
    tokens = [mint(key) for _ in range(1000)]
    parts = []
    for token in tokens:
        head, body, signature = token.split(".")
        parts.append(((head + "." + body).encode(), base64.urlsafe_b64decode(signature + "==")))

    def verify_all() -> int:
        for message, signature in parts:
            public.verify(signature, message)
        return len(parts)

    def sign_some() -> int:
        for message, _ in parts[:500]:
            key.key.sign(message)
        return 500

    return repeat(seconds, verify_all), repeat(seconds, sign_some)


async def argon2_rate(options: AuthOptions, seconds: float) -> float:
    """Bare password verifications per second: the auth service's own `Passwords`
    (argon2id, its parameters, one hash per core at once), no gRPC, no database."""
    passwords = Passwords(options.argon2)
    stored = await passwords.hash(PASSWORD)
    count, started = 0, time.perf_counter()
    stop = started + seconds

    async def one_slot() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await passwords.verify(stored, PASSWORD)
            count += 1

    await asyncio.gather(*(one_slot() for _ in range(CORES)))
    return count / (time.perf_counter() - started)


def login_client(payload: tuple[str, list[str]], start_at: float, seconds: float) -> Sample:
    """One client process: each of its emails logs in back to back (its own account:
    no throttling in play)."""
    address, emails = payload

    async def go() -> Sample:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            accounts = iter(emails * 10**6)

            async def call() -> object:
                request = auth_pb2.LoginRequest(email=next(accounts), password=PASSWORD)
                return await stub.Login(request, timeout=30)

            return await closed_loop(call, len(emails), start_at, seconds)

    return asyncio.run(go())


async def verify_rate(seconds: float, *, cached: bool = False) -> tuple[int, float]:
    """Tokens checked per second by one verifier: every check a signature check
    (`cached=False`), or as a service checks a caller's token, remembered once it
    verified, the revoked users looked up on every call (`cached=True`)."""
    key = signing_key()
    jwk = {**OKPAlgorithm.to_jwk(key.key.public_key(), as_dict=True), "kid": key.kid}

    async def jwks() -> Sequence[Mapping[str, str]]:
        return [{**jwk, "alg": "EdDSA", "use": "sig"}]

    verifier = TokenVerifier(jwks, cache_size=10_000 if cached else 0)
    revoked = RevokedUsers()
    revoked.revoke("someone-else")
    tokens = [mint(key) for _ in range(1000)]
    await verifier.verify(tokens[0])  # warm the JWKS cache
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for token in tokens:
            claims = await verifier.verify(token)
            if cached and revoked.is_revoked(claims.subject):
                raise AssertionError("not revoked")
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
    database_url: str,
    nats_url: str,
    keys: Path,
    seconds: float,
    concurrency: int,
    processes: int,
) -> tuple[Load, AuthOptions]:
    env = {
        "KLIK_AUTH_PORT": str(free_port()),
        "KLIK_SERVICE_KEYS_DIR": str(keys),
        "KLIK_AUTH_KEK": kek.new_key_line(),  # a fresh one: the run's secrets die with it
    }
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
    address = f"127.0.0.1:{server.port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            emails = [f"bench{i}@example.com" for i in range(concurrency)]
            for email in emails:
                await stub.Register(
                    auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="B")
                )
        with Clients(processes) as clients:
            payloads = [(address, emails[i::processes]) for i in range(processes)]
            load = await clients.run(login_client, payloads, seconds)
    finally:
        await server.shutdown()
    return load, options


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.auth_tokens")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client-processes", type=int, default=2)
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> list[Row]:
    print(f"cpus: {os.cpu_count()}; database: {backend().describe()}")

    count, elapsed = await verify_rate(args.seconds)
    verified = count / elapsed
    print(
        f"access tokens verified (TokenVerifier, warm JWKS cache, 1 core): {rate(count, elapsed)}"
    )
    raw_verified, raw_signed = raw_rates(args.seconds)
    print(f"  bare Ed25519 verify: {raw_verified:,.0f}/s")
    count, elapsed = await verify_rate(args.seconds, cached=True)
    checked = count / elapsed
    print(
        f"access tokens checked (TokenVerifier's cache of verified tokens, revoked users "
        f"looked up, 1 core): {rate(count, elapsed)}"
    )
    count, elapsed = sign_rate(args.seconds)
    signed = count / elapsed
    print(
        f"access tokens signed (EdDSA, 1 core): {rate(count, elapsed)}"
        f" (bare Ed25519 sign: {raw_signed:,.0f}/s)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(nats_server_binary(), free_port(), Path(tmp) / "js", Path(tmp) / "log")
        nats.start()
        databases = Databases(Path(tmp))
        keys = Path(tmp) / "keys"
        generate_keys(keys, ["auth"])
        try:
            logins, options = await login_rate(
                databases.create(),
                nats.url,
                keys,
                args.seconds,
                args.concurrency,
                args.client_processes,
            )
        finally:
            databases.drop_all()
            nats.stop()
    argon2 = await argon2_rate(options, args.seconds)
    print(
        f"logins through gRPC ({options.argon2.describe()}, {args.concurrency} in flight from "
        f"{args.client_processes} client processes, one server process): "
        f"{logins.rate:,.0f}/s, latency p50 {logins.p50_ms:.0f} ms, p99 {logins.p99_ms:.0f} ms, "
        f"client CPU {logins.client}; bare password verify, {CORES} at once: {argon2:,.0f}/s"
    )
    return [
        Row("access token verify, 1 core", verified, "/s", raw_verified, "bare Ed25519 verify"),
        Row(
            "access token checks, 1 core, cached, revocation honoured (before: 4.3k)",
            checked,
            "/s",
            verified,
            "every check a signature check",
        ),
        Row("access token sign, 1 core", signed, "/s", raw_signed, "bare Ed25519 sign"),
        Row(
            "auth Login over gRPC",
            logins.rate,
            "/s",
            argon2,
            f"bare password verify, {CORES} at once",
            logins.client,
        ),
    ]


def rows(argv: Sequence[str] = ()) -> list[Row]:
    return asyncio.run(measure(parse(argv)))


if __name__ == "__main__":
    print(table(rows(sys.argv[1:])))
