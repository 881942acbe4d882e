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


async def running(stack: JobsStack, job_id: str, path: str) -> None:
    """Wait until the job's worker is at its provider (polling, or streaming)."""

    async def reached() -> bool:
        return len(await stack.sandbox.requests(path)) >= 2 or any(
            s["ended"] is None for s in await stack.sandbox.streams()
        )

    await wait_for(reached, 10, message=f"job {job_id} at its provider")


async def purge(stack: JobsStack, user_id: str, job_id: str) -> None:
    event = envelope("user.deleted", UserDeleted(user_id=user_id), aggregate_id=user_id)
    await publish_envelope(stack.wallet.js, event)

    async def blanked() -> bool:
        prompt: str = (await row_of(stack, job_id)).prompt
        return prompt == ""

    await wait_for(blanked, 10, message="the running job purged")


async def row_of(stack: JobsStack, job_id: str) -> Any:
    async with stack.engine.connect() as conn:
        return (await conn.execute(store.jobs.select().where(store.jobs.c.id == job_id))).one()


async def finished(stack: JobsStack, job_id: str) -> Any:
    """The job's row once it finished (its user's token is refused by now)."""

    async def done() -> Any:
        row = await row_of(stack, job_id)
        return row if row.status in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    return await wait_for(done, 20, message=f"job {job_id} finished")


async def test_a_running_job_of_a_deleted_user_keeps_no_result_or_file(
    make_jobs_stack: Any,
) -> None:
    stack: JobsStack = await make_jobs_stack(deadline=20.0)
    files = open_asset_store(stack.assets)
    user_id, who = await stack.user()
    # About two seconds of polling: the purge lands while it runs.
    job = await stack.create(who, kind="IMAGE", prompt="private [[fault:polls=40]]")
    await running(stack, job.id, "/api/rest/v1/generations/")
    await purge(stack, user_id, job.id)

    row = await finished(stack, job.id)
    assert row.status == "SUCCEEDED", row.error_message
    assert row.prompt == "" and '"asset_url":""' in row.result

    # The file is removed right after the SUCCEEDED commit (jobs.succeed): the row
    # can be read a moment before.
    async def removed() -> bool:
        return await files.stat(f"{job.id}/0.png") is None

    assert await wait_for(removed, 10, interval=0.05, message="the file it fetched is removed")
    events = await stack.events(job.id, 3)
    assert events[-1].job.status == "SUCCEEDED" and events[-1].job.result.asset_url == ""
    assert row.cost_credits > 0, "the money as it was"
    await files.close()


async def test_a_streaming_reply_of_a_deleted_user_is_neither_saved_nor_kept(
    make_jobs_stack: Any,
) -> None:
    stack: JobsStack = await make_jobs_stack(deadline=20.0, stream_save_seconds=0.05)
    user_id, who = await stack.user()
    words = " ".join(f"word{i}" for i in range(40))
    job = await stack.create(who, kind="TEXT", prompt=f"{words} [[fault:rate=20]]")
    await running(stack, job.id, "/nothing")
    await purge(stack, user_id, job.id)

    row = await finished(stack, job.id)
    assert row.status == "SUCCEEDED", row.error_message
    assert row.partial_text == "" and '"text":""' in row.result
    events = await stack.events(job.id, 3)
    assert events[-1].job.result.text == ""
