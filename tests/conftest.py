"""Fixtures for every test tier: a throwaway nats-server per session and a fresh
database per test (PostgreSQL when reachable, else SQLite; see tests/databases.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from nats.aio.client import Client

from kit import bus
from tests import databases
from tests.helpers import free_port
from tests.natsserver import NatsServer, nats_server_binary
from tests.tokens import JwksServer, TokenAuthority


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"klik database: {databases.backend().describe()}",
        f"klik nats-server: {nats_server_binary()}",
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    backend = databases.backend()
    if backend.admin_url is None and backend.postgres_required:
        raise pytest.UsageError(f"{databases.REQUIRE_POSTGRES_ENV}=1 but {backend.describe()}")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """The session's nats-server; `restart()` it to simulate a broker outage."""
    root = tmp_path_factory.mktemp("nats")
    server = NatsServer(nats_server_binary(), free_port(), root / "store", root / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def make_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """Call it for each fresh, empty database the test needs; all are dropped after."""
    dbs = databases.Databases(tmp_path_factory.mktemp("sqlite"))
    yield dbs.create
    dbs.drop_all()


@pytest.fixture
def database_url(make_database_url: Callable[[], str]) -> str:
    return make_database_url()


@pytest.fixture
async def nats(nats_url: str) -> AsyncIterator[Client]:
    """A connection to the session's nats-server, with klik's streams in place."""
    nc = await bus.connect(nats_url, name="klik-tests")
    await bus.ensure_streams(nc.jetstream())
    yield nc
    await nc.close()


@pytest.fixture
def authority() -> TokenAuthority:
    """Signs user access tokens, as auth would."""
    return TokenAuthority()


@pytest.fixture
async def jwks(authority: TokenAuthority) -> AsyncIterator[JwksServer]:
    """`authority`'s public keys served over GetJwks, where services fetch them."""
    async with authority.serve() as server:
        yield server
