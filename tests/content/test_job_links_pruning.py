"""Job links are pruned once they are older than KLIK_CONTENT_JOB_LINKS_KEEP_HOURS,
by the running service's background loop: applied ones, outcomes no chat or lesson
claimed, and targets whose job never reported; younger links stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from kit.clock import utc_now
from kit.config import ConfigError
from services.content.settings import ContentOptions
from services.content.store import tables
from tests.content.conftest import StartContent
from tests.helpers import wait_for


def link(age: timedelta, **values: object) -> dict[str, object]:
    return {
        "job_id": f"job-{uuid.uuid4().hex[:12]}",
        "target_kind": None,
        "target_id": None,
        "outcome": None,
        "text": "",
        "error": "",
        "applied": False,
        "updated_at": utc_now() - age,
        **values,
    }


async def test_old_links_are_pruned_and_young_ones_kept(start_content: StartContent) -> None:
    day = timedelta(hours=24)
    old = [
        link(
            3 * day,
            target_kind="message",
            target_id=str(uuid.uuid4()),
            outcome="succeeded",
            text="hi",
            applied=True,
        ),
        link(2 * day, outcome="failed", error="provider refused"),  # never claimed
        link(2 * day, target_kind="lesson", target_id=str(uuid.uuid4())),  # never reported
    ]
    young = [
        link(timedelta(hours=23), outcome="succeeded", text="still claimable"),
        link(timedelta(minutes=1), target_kind="message", target_id=str(uuid.uuid4())),
    ]
    stack = await start_content(
        env={"KLIK_CONTENT_JOB_LINKS_KEEP_HOURS": "24", "KLIK_CONTENT_PRUNE_SECONDS": "0.1"}
    )
    async with stack.engine.begin() as conn:
        await conn.execute(insert(tables.job_links), [*old, *young])

    async def remaining() -> set[str]:
        async with stack.engine.connect() as conn:
            return set((await conn.scalars(select(tables.job_links.c.job_id))).all())

    async def old_ones_gone() -> bool:
        return not ({row["job_id"] for row in old} & await remaining())

    await wait_for(old_ones_gone, message="old job links pruned")
    assert await remaining() >= {str(row["job_id"]) for row in young}


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"KLIK_CONTENT_JOB_LINKS_KEEP_HOURS": "23"}, "at least 24"),
        ({"KLIK_CONTENT_PRUNE_SECONDS": "0"}, "positive"),
        ({"KLIK_CONTENT_PRUNE_SECONDS": "soon"}, "must be a number"),
    ],
)
def test_settings_refuse_what_would_lose_links(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        ContentOptions.from_env(env)
