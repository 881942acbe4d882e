"""Database engines for a service's own database: SQLite (embedded stack) or PostgreSQL.

A service picks its backend with one URL (`sqlite+aiosqlite:///...` or
`postgresql+psycopg://...`); everything else in the kit works on either. Schema
changes are Alembic migrations applied by `migrate()` at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, TableClause, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = [
    "UnitOfWork",
    "as_utc",
    "default_database_url",
    "dialect_insert",
    "is_disconnect",
    "is_postgres",
    "make_engine",
    "migrate",
    "session_factory",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a SQLite writer waits for the write lock before giving up. Writers queue
# on BEGIN IMMEDIATE, so this bounds the wait behind the longest write transaction
# (the outbox relay holds it while awaiting a batch of PubAcks).
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Advisory lock key that serialises `migrate()` across replicas sharing a database.
_MIGRATION_LOCK_KEY = zlib.crc32(b"klik.migrate")

# The kit's own Alembic branch (outbox, processed_events), applied in every service DB.
KIT_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def default_database_url(service: str, var_dir: Path) -> str:
    """The embedded-stack database: one SQLite file per service under `var_dir`."""
    return f"sqlite+aiosqlite:///{(var_dir / f'{service}.db').resolve()}"


def make_engine(
    url: str, *, pool_size: int = 20, max_overflow: int = 0, echo: bool = False
) -> AsyncEngine:
    """An async engine for `url` (sqlite+aiosqlite or postgresql+psycopg). On
    PostgreSQL `pool_size` connections are kept open and up to `max_overflow` more
    opened under load (`ServiceSettings.db_pool_size`,
    `db_max_overflow`: KLIK_<SERVICE>_DB_POOL_SIZE, _DB_MAX_OVERFLOW)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, echo=echo)
    if backend == "postgresql":
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            # The most recently returned connection first: under light load the same
            # few stay busy (and skip the idle ping below), the rest age out of use.
            pool_use_lifo=True,
            pool_recycle=1800,
        )
        _ping_when_idle(engine)
        return engine
    raise ValueError(f"unsupported database backend {backend!r} in {parsed!r}")


# A pooled connection unused this long is tested before it is handed out.
PING_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pre-ping, only for connections that sat idle. A replica outlives
    database restarts and fail-overs, which kill idle connections unseen; a ping on
    every checkout (`pool_pre_ping`) would catch them, but costs a round trip per
    transaction, a third of a short one. A connection in steady use is not pinged:
    if the server went away under it, the statement fails as a disconnect, the pool
    drops every connection older than that, and `UnitOfWork.run_read`/`run_write`
    run the work again on a fresh one."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < PING_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # The pool takes a fresh connection and drops every older one (a dead
            # connection means the server restarted: its siblings are dead too).
            raise sa_exc.InvalidatePoolError(str(error)) from error


def _sqlite_engine(url: str, *, echo: bool) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        _enable_wal(database)
    engine = create_async_engine(url, echo=echo)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 driver (it would only BEGIN
        # lazily, as a DEFERRED transaction, on the first DML statement).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Every transaction, reads included, takes the write lock up front. A
        # DEFERRED transaction that reads and then writes can fail at once with
        # "database is locked" (its lock upgrade would deadlock with another writer);
        # IMMEDIATE makes writers queue on busy_timeout instead. The price is one
        # transaction at a time per database: the embedded stack's trade-off.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enable_wal(path: str, attempts: int = 50) -> None:
    # WAL is a property of the database file, so it is set once here rather than on
    # every pooled connection, where concurrent switches can fail with SQLITE_BUSY
    # without waiting (the busy handler is not consulted for this lock).
    for attempt in range(attempts):
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)  # start-up only, before the engine exists


def as_utc(value: datetime) -> datetime:
    """A datetime read from a `DateTime(timezone=True)` column, made aware: SQLite
    hands them back naive, and every time klik stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay usable after commit (no implicit reload I/O)."""
    return async_sessionmaker(engine, expire_on_commit=False)


# Set in a session's `info` by `kit.outbox.add_event`: its commit has events to relay.
EVENTS_RECORDED = "klik.events_recorded"


class UnitOfWork:
    """The one way a use case runs in a transaction of its service's database.

        async with uow.read() as session:   # a consistent read; nothing is written
            ...
        async with uow.write() as session:  # commits when the block ends normally
            ...

    Both roll back if the block raises. `write()` calls `committed` after a commit
    that recorded events (the outbox relay's notify), so they go out at once; a
    commit without events wakes nobody.

    A use case on a hot path says its transaction as a function instead, so a lost
    connection (a database restart, a fail-over, a terminated backend) costs the
    caller nothing when the work can safely run again on a fresh connection:

        wallet = await uow.run_read(lambda session: store.get_wallet(session, user_id))
        entry = await uow.run_write(transfer)  # async def transfer(session) -> Entry

    `run_read` retries once after any disconnect; `run_write` only when the connection
    was lost before COMMIT was sent (then nothing was written), never once COMMIT is
    on its way (its outcome is unknown: the disconnect reaches the caller, as
    UNAVAILABLE). `work` must keep its effects inside the session: it may run twice.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self._committed = committed

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.get(EVENTS_RECORDED):
                self._committed()

    async def run_read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work` in a read transaction, run again once if the connection is lost."""
        try:
            async with self.read() as session:
                return await work(session)
        except Exception as error:
            if not is_disconnect(error):
                raise
            log.warning("database connection lost during a read; retrying once")
        async with self.read() as session:
            return await work(session)

    async def run_write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work` in a write transaction, committed; run again once on a fresh
        connection if the connection is lost before COMMIT is sent."""
        committing = False
        try:
            async with self.sessions() as session:
                async with session.begin():
                    result = await work(session)
                    await session.flush()  # the last statements before COMMIT
                    committing = True
                if session.info.get(EVENTS_RECORDED):
                    self._committed()
                return result
        except Exception as error:
            if committing or not is_disconnect(error):
                raise
            log.warning("database connection lost before commit; retrying once")
        async with self.write() as session:
            return await work(session)


# SQLSTATEs a server sends when it drops the connection: class 08 (connection
# exception) and 57P01-57P03 (administrator or crash shutdown, cannot connect now).
_DISCONNECT_STATES = ("08", "57P01", "57P02", "57P03")


def is_disconnect(error: BaseException) -> bool:
    """Whether `error` (or what it was raised from) is the database connection lost or
    refused: retryable, never a bug. SQLAlchemy's own verdict
    (`connection_invalidated`), the driver's interface errors ("the connection is
    closed"), and operational errors that carry no SQLSTATE (the client lost the
    socket: "server closed the connection unexpectedly", "connection refused") or a
    connection-loss one. Serialization failures, deadlocks and timeouts, also
    operational errors, are not disconnects."""
    seen: BaseException | None = error
    for _ in range(8):  # the __cause__ chain, bounded
        if seen is None:
            return False
        if isinstance(seen, sa_exc.DBAPIError):
            if seen.connection_invalidated or isinstance(seen, sa_exc.InterfaceError):
                return True
            if isinstance(seen, sa_exc.OperationalError):
                state = getattr(seen.orig, "sqlstate", None)
                if state is None and _is_psycopg(seen.orig):
                    return True
                if state is not None and state.startswith(_DISCONNECT_STATES):
                    return True
            return False
        seen = seen.__cause__
    return False


def _is_psycopg(error: BaseException | None) -> bool:
    return type(error).__module__.startswith("psycopg")


def is_postgres(bind: AsyncEngine | AsyncConnection | Connection) -> bool:
    return bind.dialect.name == "postgresql"


async def migrate(engine: AsyncEngine, script_location: Path) -> None:
    """Apply the Alembic migrations in `script_location` up to head.

    Safe when several replicas start at once: on PostgreSQL the upgrade runs under a
    transaction-scoped advisory lock (DDL is transactional, so a replica that waits
    then finds the schema at head and does nothing); on SQLite the BEGIN IMMEDIATE
    write lock does the same job.
    """
    async with engine.begin() as conn:
        if is_postgres(conn):
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_upgrade_head, script_location)


def _upgrade_head(conn: Connection, script_location: Path) -> None:
    # No alembic.ini: the script location is all Alembic needs, and leaving out the
    # ini file also keeps Alembic from reconfiguring the service's logging.
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # The service's own versions and the kit's branch (outbox, processed_events).
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join((str(script_location / "versions"), str(KIT_VERSIONS)))
    )
    config.attributes["connection"] = conn
    command.upgrade(config, "heads")


# ---- INSERT … ON CONFLICT on either backend ---------------------------------------------

Bind = AsyncSession | AsyncConnection | AsyncEngine | Connection | Engine


def dialect_insert(bind: Bind | str, table: TableClause) -> pg.Insert | sqlite.Insert:
    """`INSERT INTO table` in the dialect of `bind` (a session, connection or engine,
    or a dialect name: "postgresql" / "sqlite"), so `.on_conflict_do_nothing(...)`,
    `.on_conflict_do_update(...)` and `.excluded` read the same on both backends:

        claimed = await session.scalar(
            dialect_insert(session, processed_events)
            .values(consumer=name, event_id=event_id, processed_at=now)
            .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
            .returning(processed_events.c.event_id)
        )  # None: the row was there already

    ON CONFLICT rather than catching a unique violation: a racing writer waits for
    the winner's transaction, then inserts nothing, and the transaction stays usable."""
    name = bind if isinstance(bind, str) else _dialect_name(bind)
    if name == "postgresql":
        return pg.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database dialect {name!r}")


def _dialect_name(bind: Bind) -> str:
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect.name
    return bind.dialect.name
