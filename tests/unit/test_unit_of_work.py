"""kit.db.UnitOfWork: reads and writes in one idiom; commits that recorded events
wake the relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from kit import db


@pytest.fixture
async def uow_and_calls(tmp_path: Path) -> AsyncIterator[tuple[db.UnitOfWork, list[str]]]:
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'u.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    calls: list[str] = []
    yield db.UnitOfWork(db.session_factory(engine), lambda: calls.append("committed")), calls
    await engine.dispose()


async def _values(uow: db.UnitOfWork) -> list[int]:
    async with uow.read() as session:
        return list((await session.execute(text("SELECT v FROM t ORDER BY v"))).scalars())


async def test_write_commits_and_notifies(uow_and_calls: tuple[db.UnitOfWork, list[str]]) -> None:
    uow, calls = uow_and_calls
    async with uow.write() as session:
        await session.execute(text("INSERT INTO t VALUES (1)"))
        session.info[db.EVENTS_RECORDED] = True  # what kit.outbox.add_event marks
    assert await _values(uow) == [1]
    assert calls == ["committed"]


async def test_a_write_without_events_wakes_nobody(
    uow_and_calls: tuple[db.UnitOfWork, list[str]],
) -> None:
    uow, calls = uow_and_calls
    async with uow.write() as session:
        await session.execute(text("INSERT INTO t VALUES (3)"))
    await uow.run_write(lambda session: session.execute(text("INSERT INTO t VALUES (4)")))
    assert await _values(uow) == [3, 4]
    assert calls == []


async def test_a_raising_write_rolls_back_and_does_not_notify(
    uow_and_calls: tuple[db.UnitOfWork, list[str]],
) -> None:
    uow, calls = uow_and_calls
    with pytest.raises(RuntimeError):
        async with uow.write() as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))
            session.info[db.EVENTS_RECORDED] = True
            raise RuntimeError("refused")
    assert await _values(uow) == []
    assert calls == []


async def test_read_does_not_notify(uow_and_calls: tuple[db.UnitOfWork, list[str]]) -> None:
    uow, calls = uow_and_calls
    assert await _values(uow) == []
    assert calls == []
