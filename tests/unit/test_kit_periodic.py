"""kit.periodic: background loops stop when asked, even when a library swallowed the
cancellation (Python 3.11's asyncio.wait_for does, in a race aiosmtplib hits)."""

from __future__ import annotations

import asyncio

import pytest

from kit.periodic import cancel_and_wait, every, raise_if_cancel_requested, wait_event


async def swallow_once() -> None:
    """What a library racing its own wait_for does: the CancelledError never
    reaches the caller, the call returns as if nothing happened."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        return


async def test_a_swallowed_cancellation_is_raised_after_the_round() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            await swallow_once()
            raise_if_cancel_requested()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert rounds == 1


async def test_every_stops_on_the_first_cancellation_even_when_a_round_swallows_it() -> None:
    rounds = 0

    async def job() -> int:
        nonlocal rounds
        rounds += 1
        await swallow_once()
        return 0

    task = asyncio.create_task(every(0.01, job, "swallowing job"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert rounds == 1


async def test_cancel_and_wait_cancels_again_what_outlived_its_cancellation() -> None:
    async def stubborn() -> None:
        # Swallows two cancellations without ever checking: a loop with no
        # raise_if_cancel_requested() of its own.
        for _ in range(2):
            await swallow_once()
        await asyncio.Event().wait()

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], within=10) == []
    assert task.cancelled()


async def test_cancel_and_wait_names_what_never_stops() -> None:
    released = asyncio.Event()

    async def immortal() -> None:
        while not released.is_set():
            await swallow_once()

    task = asyncio.create_task(immortal(), name="immortal")
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], within=0.3) == ["immortal"]
    assert not task.done()
    released.set()
    task.cancel()
    await asyncio.wait_for(task, 5)


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 5) is True
