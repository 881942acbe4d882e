"""A stand-in for a service's own table: what a test handler writes, one row per
application, so an event applied twice shows up as two rows."""

from __future__ import annotations

from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kit.context import current_request_id
from klik.events.v1.envelope_pb2 import Envelope

metadata = MetaData()

effects = Table(
    "test_effects",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("value", String(200), nullable=False),
    Column("request_id", String(64), nullable=False),
)


async def record(session: AsyncSession, envelope: Envelope, payload: StringValue) -> None:
    """The handler most tests use: apply the event by writing one effect row."""
    await session.execute(
        insert(effects).values(
            event_id=envelope.id, value=payload.value, request_id=current_request_id()
        )
    )


async def count(engine: AsyncEngine, event_id: str | None = None) -> int:
    query = select(func.count()).select_from(effects)
    if event_id is not None:
        query = query.where(effects.c.event_id == event_id)
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)
