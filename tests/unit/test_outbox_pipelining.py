"""kit.outbox.OutboxRelay publishes a batch's aggregates side by side, each
aggregate's events in order, one after its predecessor's PubAck; a failed publish
holds back only the rest of its own aggregate."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from kit.db import make_engine
from kit.outbox import OutboxRelay


@dataclass
class Ack:
    duplicate: bool = False


@dataclass
class FakeJetStream:
    """Answers each publish after a turn of the loop; fails the event ids in `fail`."""

    fail: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    async def publish(self, subject: str, payload: bytes, **kwargs: Any) -> Ack:
        event_id = kwargs["headers"]["Nats-Msg-Id"]
        self.sent.append(event_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if event_id in self.fail:
                raise TimeoutError("no PubAck")
            return Ack()
        finally:
            self.in_flight -= 1


def rows(*events: tuple[int, str]) -> list[tuple[int, str, str, str, bytes]]:
    """(seq, aggregate) -> outbox rows, event id `<aggregate>-<seq>`."""
    return [(seq, f"{agg}-{seq}", "klik.x", agg, b"") for seq, agg in events]


async def test_aggregates_go_side_by_side_each_in_order() -> None:
    js = FakeJetStream()
    relay = OutboxRelay(make_engine("sqlite+aiosqlite:///:memory:"), js)  # type: ignore[arg-type]
    batch = rows((1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, "b"), (6, "a"))
    acked = await relay._publish_batch(batch)  # type: ignore[arg-type]
    assert acked == [1, 2, 3, 4, 5, 6]
    assert js.most_in_flight == 3, "one publish in flight per aggregate"
    for aggregate in "abc":
        mine = [e for e in js.sent if e.startswith(aggregate)]
        assert mine == sorted(mine, key=lambda e: int(e.split("-")[1])), aggregate
    assert relay.stats.published == 6


async def test_a_failure_holds_back_only_its_own_aggregate() -> None:
    js = FakeJetStream(fail={"a-3"})
    relay = OutboxRelay(make_engine("sqlite+aiosqlite:///:memory:"), js)  # type: ignore[arg-type]
    batch = rows((1, "a"), (2, "b"), (3, "a"), (4, "b"), (5, "a"))
    acked = await relay._publish_batch(batch)  # type: ignore[arg-type]
    assert acked == [1, 2, 4], "a-5 waits behind a-3; b goes on"
    assert "a-5" not in js.sent
    assert relay.stats.failures == 1
