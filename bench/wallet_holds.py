"""How fast the wallet places and captures holds: prints figures, asserts nothing.

    .venv/bin/python -m bench.wallet_holds [--pairs 3000] [--concurrency 16] [--wallets 1000]

Against a fresh database on the PostgreSQL at $KLIK_TEST_DATABASE_URL (default the
local server; SQLite when unreachable), with the wallet's own use cases in-process
(`services.wallet.ledger.Ledger`, no gRPC), `--concurrency` tasks each running
PlaceHold then CaptureHold back to back, with fresh idempotency keys. Every hold is
one transaction (key claim, wallet lock, hold row, wallet row, outbox event) and
every capture another (key claim, wallet + hold lock, charge row, hold, wallet row,
outbox event; no NATS: the events are written, not relayed). It measures:
  - hold+capture pairs per second and per-pair latency p50/p99 on ONE hot wallet
    (every transaction queues on that wallet's row lock) and spread over `--wallets`
    wallets;
  - beside them, in the same run on the same database and pool, the raw rate of a
    single-row `UPDATE counters SET v = v + 1 WHERE id = :id` (one per transaction,
    the same concurrency) on one hot row and spread over as many rows, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import Row, table
from kit import db
from services.wallet.events import open_wallet
from services.wallet.ledger import Ledger
from services.wallet.service import MIGRATIONS
from tests.databases import Databases, backend

FUNDS = 10**12
GENERATION = "service:generation"


@dataclass(frozen=True)
class Figures:
    rate: float  # operations (pairs, or UPDATEs) per second
    p50_ms: float
    p99_ms: float
    # This process's CPU time over wall time: near 100% means the benchmark (one
    # Python process, like one service replica) is the limit, not the database.
    client_cpu: float

    def line(self, what: str, unit: str) -> str:
        return (
            f"{what:<40} {self.rate:>7,.0f} {unit}/s  "
            f"p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms  "
            f"client CPU {self.client_cpu:4.0%}"
        )


async def drive(
    total: int, concurrency: int, operation: Callable[[int], Awaitable[None]]
) -> Figures:
    """Run `operation(i)` for i in range(total) on `concurrency` workers."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await operation(i)
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    busy = (time.process_time() - cpu) / elapsed
    return Figures(total / elapsed, cuts[49] * 1000, cuts[98] * 1000, busy)


async def holds_and_captures(
    ledger: Ledger, wallets: list[str], pairs: int, concurrency: int
) -> Figures:
    run = uuid.uuid4().hex
    expires = datetime.now(UTC) + timedelta(hours=1)
    rng = random.Random(7)

    async def pair(i: int) -> None:
        user_id = wallets[0] if len(wallets) == 1 else rng.choice(wallets)
        hold = await ledger.place_hold(
            GENERATION, f"{run}-h{i}", user_id=user_id, amount=3, expires_at=expires
        )
        await ledger.capture_hold(GENERATION, f"{run}-c{i}", hold_id=hold.id, amount=2)

    return await drive(pairs, concurrency, pair)


async def raw_updates(engine: AsyncEngine, rows: int, total: int, concurrency: int) -> Figures:
    rng = random.Random(7)
    statement = text("UPDATE bench_counters SET v = v + 1 WHERE id = :id")

    async def update(i: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(statement, {"id": 0 if rows == 1 else rng.randrange(rows)})

    return await drive(total, concurrency, update)


async def setup(engine: AsyncEngine, wallets: list[str], rows: int) -> None:
    await db.migrate(engine, MIGRATIONS)
    sessions = db.session_factory(engine)
    async with sessions() as session, session.begin():
        for user_id in wallets:
            await open_wallet(session, user_id, FUNDS)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE bench_counters (id INTEGER PRIMARY KEY, v BIGINT)"))
        await conn.execute(
            text("INSERT INTO bench_counters (id, v) VALUES (:id, 0)"),
            [{"id": i} for i in range(rows)],
        )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.wallet_holds")
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--wallets", type=int, default=1000)
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> list[Row]:
    results: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        databases = Databases(Path(tmp))
        try:
            url = databases.create()
            engine = db.make_engine(url, pool_size=args.concurrency)
            hot = [str(uuid.uuid4())]
            spread = [str(uuid.uuid4()) for _ in range(args.wallets)]
            await setup(engine, hot + spread, args.wallets)
            ledger = Ledger(db.UnitOfWork(db.session_factory(engine)))
            print(
                f"database: {backend().describe()}; {args.concurrency} concurrent tasks, "
                f"{args.pairs} hold+capture pairs per case (in-process, no gRPC)"
            )
            # Warm the pool and the caches before measuring.
            await holds_and_captures(ledger, spread, 200, args.concurrency)
            await raw_updates(engine, args.wallets, 200, args.concurrency)

            cases = (
                ("ONE hot wallet", hot, 1),
                (f"{args.wallets:,} wallets", spread, args.wallets),
            )
            for name, wallets, rows in cases:
                pairs = await holds_and_captures(ledger, wallets, args.pairs, args.concurrency)
                updates = await raw_updates(engine, rows, args.pairs * 2, args.concurrency)
                row_name = "1 row" if rows == 1 else f"{rows:,} rows"
                print(pairs.line(f"hold+capture, {name}", "pairs"))
                print(updates.line(f"raw single-row UPDATE, {row_name}", "updates"))
                print(
                    f"{'':<40} ratio: {pairs.rate / updates.rate:.3f} pairs per raw UPDATE "
                    f"({pairs.rate * 2 / updates.rate:.2f} wallet transactions per raw UPDATE)"
                )
                results.append(
                    Row(
                        f"wallet hold+capture, {name} (in-process)",
                        pairs.rate,
                        "pairs/s",
                        updates.rate,
                        f"raw UPDATE, {row_name}",
                        f"{pairs.client_cpu:.0%} of this process's core",
                        baseline_unit="updates/s",
                    )
                )
            await engine.dispose()
        finally:
            databases.drop_all()
    return results


def rows(argv: Sequence[str] = ()) -> list[Row]:
    return asyncio.run(measure(parse(argv)))


if __name__ == "__main__":
    print(table(rows(sys.argv[1:])))
