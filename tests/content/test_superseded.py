"""A started job whose hidden message or lesson a concurrent refused copy of the
request removed: recording it is refused as a whole (no link left behind), so the
caller cancels the job instead of answering with a row that does not exist."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.content import chats, lessons
from services.content.domain import Superseded
from services.content.store import tables


def record_message(session: AsyncSession, job_id: str, now: datetime) -> Awaitable[None]:
    return chats.record_job(session, str(uuid.uuid4()), str(uuid.uuid4()), job_id, now)


def record_lesson(session: AsyncSession, job_id: str, now: datetime) -> Awaitable[None]:
    return lessons.record_job(session, str(uuid.uuid4()), job_id, now)


@pytest.mark.parametrize("record", [record_message, record_lesson])
async def test_recording_a_job_for_a_row_that_is_gone_is_refused_whole(
    engine: AsyncEngine,
    record: Callable[[AsyncSession, str, datetime], Awaitable[None]],
) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    job_id = str(uuid.uuid4())
    with pytest.raises(Superseded) as raised:
        async with sessions() as session, session.begin():
            await record(session, job_id, datetime.now(UTC))
    assert raised.value.reason == "REQUEST_SUPERSEDED"
    async with sessions() as session:
        links = await session.scalar(
            select(func.count())
            .select_from(tables.job_links)
            .where(tables.job_links.c.job_id == job_id)
        )
    assert links == 0, "the job link was rolled back with the refusal"
