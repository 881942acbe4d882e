"""Crash a service mid-outbox: `python -m tests.integration.scripts.outbox_crash MODE
DATABASE_URL NATS_URL EVENT_TYPE`. Prints the event id, then SIGKILLs itself:

commit   right after committing the state change + event (nothing published yet)
publish  after the relay published the event and got its PubAck, before marking it
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy.ext.asyncio import AsyncConnection

from kit import bus
from kit.db import make_engine, session_factory
from kit.outbox import OutboxRelay, add_event


class CrashBeforeMark(OutboxRelay):
    async def _mark_published(self, conn: AsyncConnection, seqs: list[int]) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


async def main(mode: str, database_url: str, nats_url: str, event_type: str) -> None:
    engine = make_engine(database_url)
    async with session_factory(engine)() as session, session.begin():
        event_id = await add_event(
            session, event_type, StringValue(value="crash"), aggregate_id="crash-1"
        )
    print(event_id, flush=True)
    if mode == "publish":
        nc = await bus.connect(nats_url, name="outbox-crash")
        await CrashBeforeMark(engine, nc.jetstream()).relay_once()
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
