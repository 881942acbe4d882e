"""A consumer that dies after committing its effect but before acking:
`python -m tests.integration.scripts.consumer_crash DATABASE_URL NATS_URL CONSUMER
EVENT_TYPE ACK_WAIT`. Exits 3 if no message arrives within 10 seconds."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from google.protobuf.wrappers_pb2 import StringValue
from nats.aio.msg import Msg

from kit import bus
from kit.consumer import EventConsumer
from kit.db import make_engine
from tests.integration import effects


class CrashBeforeAck(EventConsumer[StringValue]):
    async def _ack(self, msg: Msg) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


async def main(
    database_url: str, nats_url: str, consumer: str, event_type: str, ack_wait: str
) -> None:
    nc = await bus.connect(nats_url, name="consumer-crash")
    worker = CrashBeforeAck(
        make_engine(database_url),
        nc.jetstream(),
        consumer=consumer,
        event_type=event_type,
        handler=effects.record,
        payload_type=StringValue,
        ack_wait=float(ack_wait),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await worker.process_batch(wait=0.5)
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
