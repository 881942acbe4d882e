"""A lost database connection on a real PostgreSQL whose backends are terminated: it is
a disconnect (kit.db.is_disconnect), UnitOfWork.run_read / run_write run the work once
more on a fresh connection where that is safe, and a call that loses its connection
answers UNAVAILABLE, never INTERNAL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kit import db, errors
from kit.config import ServiceSettings
from kit.server import Resources, Server, ServiceParts
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from services.auth.service import SPEC as AUTH_SPEC

TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def terminate_all(url: str) -> int:
    """Terminate every other backend of the database at `url`; how many there were."""
    with psycopg.connect(conninfo(url), autocommit=True) as admin:
        return len(admin.execute(TERMINATE).fetchall())


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL")
    return database_url


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.make_engine(pg_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER NOT NULL)"))
    yield engine
    await engine.dispose()


async def values(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list(await conn.scalars(text("SELECT v FROM t ORDER BY v")))


async def test_a_terminated_backend_is_a_disconnect(engine: AsyncEngine, pg_url: str) -> None:
    with pytest.raises(Exception) as lost:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.to_thread(terminate_all, pg_url)
            await conn.execute(text("SELECT 1"))
    assert db.is_disconnect(lost.value)
    wrapped = RuntimeError("while reading")
    wrapped.__cause__ = lost.value
    assert db.is_disconnect(wrapped)


async def test_other_database_errors_are_not_disconnects(engine: AsyncEngine) -> None:
    with pytest.raises(Exception) as broken:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    assert not db.is_disconnect(broken.value)
    with pytest.raises(Exception) as timed_out:
        async with engine.connect() as conn:
            await conn.execute(text("SET statement_timeout = 10"))
            await conn.execute(text("SELECT pg_sleep(1)"))
    assert not db.is_disconnect(timed_out.value)  # an operational error, not a lost link
    assert not db.is_disconnect(ValueError("no"))


async def test_an_idle_connection_killed_unseen_is_replaced_on_checkout(
    engine: AsyncEngine, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain checkout (no retry around it) after the server dropped every pooled
    connection while they sat idle gets a live one: the idle ping caught it."""
    async with engine.connect() as conn:
        before = await conn.scalar(text("SELECT pg_backend_pid()"))
    assert await asyncio.to_thread(terminate_all, pg_url) >= 1
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # "idle long enough", without a wait
    async with engine.connect() as conn:
        after = await conn.scalar(text("SELECT pg_backend_pid()"))
    assert after != before


async def test_a_connection_in_steady_use_is_not_pinged(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    real_ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    for _ in range(5):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert len(pings) == 1


async def test_run_read_runs_again_on_a_fresh_connection(engine: AsyncEngine, pg_url: str) -> None:
    uow = db.UnitOfWork(db.session_factory(engine))
    attempts: list[int] = []

    async def work(session: AsyncSession) -> int:
        pid = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
        attempts.append(pid)
        if len(attempts) == 1:
            await asyncio.to_thread(terminate_all, pg_url)
        return int(await session.scalar(text("SELECT count(*) FROM t")) or 0)

    assert await uow.run_read(work) == 0
    assert len(attempts) == 2 and attempts[0] != attempts[1]


async def test_run_write_lost_before_commit_writes_once(engine: AsyncEngine, pg_url: str) -> None:
    committed: list[str] = []
    uow = db.UnitOfWork(db.session_factory(engine), lambda: committed.append("committed"))
    attempts = 0

    async def work(session: AsyncSession) -> str:
        nonlocal attempts
        attempts += 1
        await session.execute(text("INSERT INTO t VALUES (1)"))
        if attempts == 1:
            await asyncio.to_thread(terminate_all, pg_url)
        await session.execute(text("INSERT INTO t VALUES (2)"))
        session.info[db.EVENTS_RECORDED] = True  # as kit.outbox.add_event marks it
        return "done"

    assert await uow.run_write(work) == "done"
    assert attempts == 2
    assert await values(engine) == [1, 2]  # the first attempt left nothing half-written
    assert committed == ["committed"]


async def test_run_write_lost_during_commit_is_not_run_again(
    engine: AsyncEngine, pg_url: str
) -> None:
    committed: list[str] = []
    uow = db.UnitOfWork(db.session_factory(engine), lambda: committed.append("committed"))
    attempts = 0

    def cut(conn: Any) -> None:
        # Just before COMMIT goes out: its outcome is then unknown to the client.
        terminate_all(pg_url)

    async def work(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await session.execute(text("INSERT INTO t VALUES (7)"))
        session.info[db.EVENTS_RECORDED] = True

    event.listen(engine.sync_engine, "commit", cut)
    try:
        with pytest.raises(Exception) as lost:
            await uow.run_write(work)
    finally:
        event.remove(engine.sync_engine, "commit", cut)
    assert db.is_disconnect(lost.value)
    assert attempts == 1 and committed == []
    assert await values(engine) == []  # the server never got the COMMIT


async def test_run_write_does_not_retry_what_is_no_disconnect(engine: AsyncEngine) -> None:
    uow = db.UnitOfWork(db.session_factory(engine))
    attempts = 0

    async def work(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await session.execute(text("INSERT INTO t VALUES (1)"))
        raise LookupError("refused")

    with pytest.raises(LookupError):
        await uow.run_write(work)
    assert attempts == 1 and await values(engine) == []


class DatabaseAuth(auth_pb2_grpc.AuthServiceServicer):
    """GetMe runs a read whose connection is terminated halfway."""

    def __init__(self, resources: Resources, url: str) -> None:
        self.resources = resources
        self.url = url

    async def GetMe(self, request: Any, context: Any) -> auth_pb2.GetMeResponse:
        async with self.resources.uow.read() as session:
            await session.execute(text("SELECT 1"))
            await asyncio.to_thread(terminate_all, self.url)
            await session.execute(text("SELECT 1"))
        return auth_pb2.GetMeResponse()


async def test_a_call_that_loses_its_connection_is_unavailable(pg_url: str, nats_url: str) -> None:
    def build(resources: Resources) -> ServiceParts:
        def register(server: grpc.aio.Server) -> Sequence[str]:
            servicer = DatabaseAuth(resources, pg_url)
            auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
            return ("klik.auth.v1.AuthService",)

        return ServiceParts(register)

    settings = dataclasses.replace(
        ServiceSettings.from_env("auth", env={}),
        port=0,
        metrics_port=0,
        database_url=pg_url,
        nats_url=nats_url,
        grace_seconds=2.0,
    )
    server = Server(dataclasses.replace(AUTH_SPEC, build=build), settings)
    await server.start()
    try:
        await asyncio.wait_for(server.ready.wait(), 30)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await auth_pb2_grpc.AuthServiceStub(channel).GetMe(
                    auth_pb2.GetMeRequest(), timeout=10
                )
    finally:
        await server.shutdown()
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert failed.value.details() == errors.DATABASE_UNAVAILABLE_MESSAGE
    info = errors.error_details(failed.value.trailing_metadata())
    assert info is not None and info.reason == "UNAVAILABLE"
