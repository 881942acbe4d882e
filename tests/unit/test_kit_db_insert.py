"""kit.db.dialect_insert: one INSERT … ON CONFLICT for SQLite and PostgreSQL. The
statement is checked for both dialects here and run on SQLite; tests/integration
runs it on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kit.db import dialect_insert, session_factory

DIALECTS: dict[str, Dialect] = {
    "postgresql": postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
    "sqlite": sqlite.aiosqlite.dialect(),
}
metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("name", String, primary_key=True),
    Column("count", Integer, nullable=False),
)


def test_dialect_by_name() -> None:
    assert isinstance(dialect_insert("postgresql", things), postgresql.Insert)
    assert isinstance(dialect_insert("sqlite", things), sqlite.Insert)
    with pytest.raises(ValueError):
        dialect_insert("mysql", things)


@pytest.mark.parametrize("name", ["postgresql", "sqlite"])
def test_on_conflict_compiles_on_both(name: str) -> None:
    dialect = DIALECTS[name]
    statement = dialect_insert(name, things).values(name="a", count=1)
    upsert = statement.on_conflict_do_update(
        index_elements=["name"], set_={"count": things.c.count + statement.excluded.count}
    )
    sql = str(upsert.compile(dialect=dialect))
    assert "ON CONFLICT (name) DO UPDATE SET count = (things.count + excluded.count)" in sql
    nothing = str(
        dialect_insert(name, things)
        .on_conflict_do_nothing(index_elements=["name"])
        .compile(dialect=dialect)
    )
    assert "ON CONFLICT (name) DO NOTHING" in nothing


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_runs_on_sqlite_from_a_session_connection_or_engine(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session, session.begin():
        first = await session.scalar(
            dialect_insert(session, things)
            .values(name="a", count=1)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(things.c.name)
        )
        again = await session.scalar(
            dialect_insert(engine, things)
            .values(name="a", count=5)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(things.c.name)
        )
    assert (first, again) == ("a", None)
    async with engine.begin() as conn:
        statement = dialect_insert(conn, things).values(name="a", count=2)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"count": things.c.count + statement.excluded.count}
            )
        )
        assert await conn.scalar(select(things.c.count)) == 3
