"""`user.deleted` reaches generation: the user's prompts and results are blanked and
their result files removed from the asset store; another user's stay, and the
money (cost, settlement) is untouched."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kit.assets import open_asset_store
from klik.events.v1.events_pb2 import UserDeleted
from klik.generation.v1 import generation_pb2
from services.generation import store
from tests.generation.jobs.conftest import JobsStack
from tests.helpers import envelope, publish_envelope, wait_for


async def test_a_deleted_users_prompts_results_and_files_are_purged(stack: JobsStack) -> None:
    files = open_asset_store(stack.assets)
    done: dict[str, list[generation_pb2.Job]] = {}
    for name in ("gone", "stays"):
        user_id, who = await stack.user()
        jobs = [
            await stack.create(
                who,
                kind="IMAGE",
                prompt=f"{name}'s private picture",
                options=generation_pb2.JobOptions(width=64, height=64, num_images=2),
            ),
            await stack.create(who, kind="TEXT", prompt=f"{name}'s private question"),
        ]
        done[user_id] = [await stack.finished(who, job.id) for job in jobs]
        assert all(job.status == "SUCCEEDED" for job in done[user_id])
    gone, stays = done

    def keys(user_id: str) -> list[str]:
        image = done[user_id][0]
        return [f"{image.id}/0.png", f"{image.id}/1.png"]

    for user_id in done:
        for key in keys(user_id):
            assert await files.stat(key) is not None

    event = envelope("user.deleted", UserDeleted(user_id=gone), aggregate_id=gone)
    await publish_envelope(stack.wallet.js, event)

    async def files_gone() -> bool:
        return all([await files.stat(key) is None for key in keys(gone)])

    await wait_for(files_gone, message="the deleted user's files removed")
    for key in keys(stays):
        assert await files.stat(key) is not None, "another user's files stay"

    async def purged() -> dict[str, Any] | None:
        # The files go inside the consumer's transaction, before it commits.
        async with stack.engine.connect() as conn:
            rows = {
                row.id: row
                for row in await conn.execute(
                    select(
                        store.jobs.c.id,
                        store.jobs.c.prompt,
                        store.jobs.c.result,
                        store.jobs.c.cost_credits,
                        store.jobs.c.settlement,
                    )
                )
            }
        return rows if all(rows[job.id].prompt == "" for job in done[gone]) else None

    rows = await wait_for(purged, message="the deleted user's rows blanked")
    assert rows is not None
    for job in done[gone]:
        row = rows[job.id]
        assert row.prompt == "" and "private" not in (row.result or "")
        assert row.cost_credits == job.cost_credits > 0, "the money stays as it was"
    for job in done[stays]:
        assert rows[job.id].prompt.startswith("stays's private")
    await files.close()
