"""Integration fixtures: a migrated service database and a JetStream connection with
the klik streams in place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import bus
from kit.db import make_engine, migrate

MIGRATIONS = Path(__file__).parent / "migrations"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The test database migrated like a service's: the kit's tables and test_effects."""
    engine = make_engine(database_url)
    await migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture
async def nats(nats_url: str) -> AsyncIterator[Client]:
    nc = await bus.connect(nats_url, name="klik-tests")
    await bus.ensure_streams(nc.jetstream())
    yield nc
    await nc.close()


@pytest.fixture
def js(nats: Client) -> JetStreamContext:
    return nats.jetstream()
