"""progress.ReplySaver: the replies streaming on a replica, saved together."""

from __future__ import annotations

import asyncio
from typing import Any

from services.generation.progress import ReplySaver, StreamProgress
from tests.helpers import wait_for


class NoStreams:
    async def publish(self, job_id: str, event: Any) -> None:
        pass


async def test_replies_that_grew_are_saved_together_at_most_once_an_interval() -> None:
    saves: list[list[tuple[str, str, str]]] = []
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def save(rows: list[tuple[str, str, str]]) -> None:
        times.append(loop.time())
        saves.append(sorted(rows))

    saver = ReplySaver(save, interval=1.0)
    streams: Any = NoStreams()
    a = StreamProgress("job-a", "r/1", streams, saver)
    b = StreamProgress("job-b", "r/2", streams, saver)
    await a.delta("Hello", 0, 1, 1)  # the first save goes at once...

    async def saved(count: int) -> bool:
        return len(saves) >= count

    await wait_for(lambda: saved(1), 5, interval=0.01, message="the first save")
    assert saves[0] == [("job-a", "r/1", "Hello")]
    for word in (" there", " and", " more"):  # ...the next ones together, an interval on
        await a.delta(word, 0, 1, 1)
    await wait_for(lambda: saved(2), 5, interval=0.01, message="the second save")
    assert saves[1] == [("job-a", "r/1", "Hello there and more")]
    assert times[1] - times[0] >= 1.0 - 0.01

    # A reply's first text goes at once, with whatever else grew, interval or not.
    await a.delta("?", 0, 1, 1)
    await b.delta("Hi", 0, 1, 1)
    await wait_for(lambda: saved(3), 5, interval=0.01, message="the third save")
    assert saves[2] == [("job-a", "r/1", "Hello there and more?"), ("job-b", "r/2", "Hi")]
    assert times[2] - times[1] < 0.5, "b's beginning did not wait an interval"

    # A reply that ends is not saved from here any more (its text goes with its status).
    await a.delta("!", 0, 1, 1)
    await b.delta("!", 0, 1, 1)
    await a.close()
    await wait_for(lambda: saved(4), 5, interval=0.01, message="the fourth save")
    assert saves[3] == [("job-b", "r/2", "Hi!")]
    assert times[3] - times[2] >= 1.0 - 0.01
