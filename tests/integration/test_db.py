"""kit.db on real engines: migrations racing across replicas, SQLite writers that
never hit "database is locked"."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, select, text, update

from kit.db import (
    default_database_url,
    dialect_insert,
    is_postgres,
    make_engine,
    migrate,
    session_factory,
)
from tests.integration.conftest import MIGRATIONS


async def test_replicas_migrating_at_once_both_succeed(
    make_database_url: Callable[[], str],
) -> None:
    url = make_database_url()
    engines = [make_engine(url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(engine, MIGRATIONS) for engine in engines))
        await migrate(engines[0], MIGRATIONS)  # at head already: a no-op
        async with engines[0].connect() as conn:
            heads = set(await conn.scalars(text("SELECT version_num FROM alembic_version")))
            tables = await conn.run_sync(lambda sync: set(sync.dialect.get_table_names(sync)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert heads == {"kit_0001", "0001"}  # the kit's branch and the service's own
    assert {"outbox", "processed_events", "test_effects"} <= tables


async def test_sqlite_read_then_write_transactions_serialise(tmp_path: Path) -> None:
    """Two "processes" (engines) each run read-modify-write transactions concurrently.
    DEFERRED transactions would fail with "database is locked" (or lose updates);
    BEGIN IMMEDIATE queues them on busy_timeout instead."""
    url = default_database_url("counter", tmp_path / "nested" / "var")
    assert Path(url.removeprefix("sqlite+aiosqlite:///")).parent.is_dir() is False
    metadata = MetaData()
    counter = Table(
        "counter",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("n", Integer, nullable=False),
    )
    engines = [make_engine(url) for _ in range(2)]
    assert not is_postgres(engines[0])
    async with engines[0].begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(counter.insert().values(id=1, n=0))

    async def increment(engine_index: int) -> None:
        async with engines[engine_index].begin() as conn:
            n = (await conn.execute(select(counter.c.n).where(counter.c.id == 1))).scalar_one()
            await asyncio.sleep(0)  # let the other writers interleave
            await conn.execute(update(counter).where(counter.c.id == 1).values(n=n + 1))

    try:
        await asyncio.gather(*(increment(i % 2) for i in range(40)))
        async with engines[0].connect() as conn:
            assert await conn.scalar(select(counter.c.n)) == 40
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        for engine in engines:
            await engine.dispose()


async def test_dialect_insert_on_conflict_on_the_real_engine(
    make_database_url: Callable[[], str],
) -> None:
    """Writers racing for one key: one inserts, the others insert nothing and their
    transactions stay usable; an upsert adds up on either backend."""
    metadata = MetaData()
    claims = Table(
        "claims",
        metadata,
        Column("name", String(20), primary_key=True),
        Column("n", Integer, nullable=False),
    )
    engine = make_engine(make_database_url())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

        async def claim(n: int) -> bool:
            async with session_factory(engine)() as session, session.begin():
                won = await session.scalar(
                    dialect_insert(session, claims)
                    .values(name="k", n=n)
                    .on_conflict_do_nothing(index_elements=["name"])
                    .returning(claims.c.name)
                )
                await session.execute(select(claims.c.n))  # still usable
                return won is not None

        assert sum(await asyncio.gather(*(claim(i) for i in range(8)))) == 1
        async with engine.begin() as conn:
            statement = dialect_insert(conn, claims).values(name="k", n=100)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"], set_={"n": claims.c.n + statement.excluded.n}
                )
            )
            total = await conn.scalar(select(claims.c.n))
        assert total is not None and total >= 100
    finally:
        await engine.dispose()
