"""Integration fixtures: a migrated service database and a JetStream connection with
the klik streams in place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

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
def js(nats: Client) -> JetStreamContext:
    return nats.jetstream()
