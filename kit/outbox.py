"""The transactional outbox: record events with the state change, relay them to JetStream.

A service calls `add_event()` inside the transaction that changes its state, so the
event exists if and only if the change committed. `OutboxRelay` then publishes
unpublished rows with `Nats-Msg-Id` = event id and marks a row only after its PubAck,
so a crash anywhere re-publishes (and the broker drops the duplicate) rather than
loses an event.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf.message import Message
from nats.js import JetStreamContext
from prometheus_client import Counter
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from kit.backoff import Backoff
from kit.bus import EVENTS_STREAM, event_subject, event_types_of
from kit.clock import Clock, utc_now
from kit.context import current_request_id
from kit.db import EVENTS_RECORDED, is_postgres
from kit.periodic import wait_event
from kit.tables import outbox, partition_of
from klik.events.v1.envelope_pb2 import Envelope

__all__ = ["OutboxRelay", "RelayStats", "add_event", "prune_published"]

log = logging.getLogger(__name__)

PUBLISHED = Counter("klik_outbox_published_total", "Outbox events published to JetStream.")
DUPLICATES = Counter(
    "klik_outbox_duplicates_total",
    "Outbox publishes the broker already had (a retry after a crash or lost ack).",
)
PUBLISH_FAILURES = Counter("klik_outbox_publish_failures_total", "Failed outbox publishes.")


def _lock_namespace() -> int:
    # First key of the two-int advisory lock: keeps the relay's partition locks apart
    # from any other advisory locks a service takes. Must fit a signed int4.
    key = zlib.crc32(b"klik.outbox.relay")
    return key - 2**32 if key >= 2**31 else key


_LOCK_NAMESPACE = _lock_namespace()


async def add_event(
    session: AsyncSession | AsyncConnection,
    event_type: str,
    payload: Message,
    *,
    aggregate_id: str,
    user_id: str = "",
    clock: Clock = utc_now,
) -> str:
    """Record an event in the caller's transaction (never commits). Returns the event id.

    `event_type` is the payload's own, `kit.bus.event_type_of(payload)`: a payload
    whose message declares its event types (`(klik.options.v1.event)`) is refused
    (ValueError) under any other type. Call `OutboxRelay.notify()` after committing to
    publish it without waiting for the next poll (`UnitOfWork.write` does, for the
    transactions that recorded one).
    """
    declared = event_types_of(payload)
    if declared and event_type not in declared:
        raise ValueError(
            f"{payload.DESCRIPTOR.full_name} is the payload of {', '.join(declared)}, "
            f"not of {event_type!r}"
        )
    now = clock()
    event_id = str(uuid.uuid4())
    envelope = Envelope(
        id=event_id,
        type=event_type,
        aggregate_id=aggregate_id,
        user_id=user_id,
        request_id=current_request_id(),
    )
    envelope.occurred_at.FromDatetime(now)
    envelope.payload.Pack(payload)
    await session.execute(
        insert(outbox).values(
            id=event_id,
            type=event_type,
            subject=event_subject(event_type),
            aggregate_id=aggregate_id,
            partition=partition_of(aggregate_id),
            payload=envelope.SerializeToString(),
            created_at=now,
        )
    )
    session.info[EVENTS_RECORDED] = True
    return event_id


async def prune_published(
    engine: AsyncEngine, older_than: timedelta, *, clock: Clock = utc_now
) -> int:
    """Delete rows published more than `older_than` ago. Returns how many."""
    cutoff = clock() - older_than
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(outbox).where(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff)
        )
    return result.rowcount


@dataclass
class RelayStats:
    """What one relay instance did (the Prometheus counters add up all instances)."""

    published: int = 0
    duplicates: int = 0
    failures: int = 0


@dataclass(frozen=True)
class _PartitionResult:
    published: int
    failed: bool
    full: bool


class OutboxRelay:
    """Publishes the outbox to JetStream, in write order per aggregate.

    Any number of replicas may run one each. On PostgreSQL a replica works on a
    partition only while holding `pg_try_advisory_xact_lock(namespace, partition)`
    (partitions another replica holds are skipped this pass) and locks the rows it
    reads (`FOR UPDATE SKIP LOCKED`); on SQLite every transaction holds the database
    write lock. Either way one relay at a time owns a partition. It publishes each
    aggregate's rows of that partition one by one in `seq` order, awaiting each
    PubAck, the aggregates of a batch side by side, and an aggregate stops at its
    first failure, so the stream never sees an aggregate's events out of order.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        js: JetStreamContext,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        publish_timeout: float = 5.0,
        max_backoff: float = 30.0,
        concurrency: int = 4,
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._js = js
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        # Equal jitter: replicas spread out, and a failing pass never retries at once.
        self._backoff = Backoff(0.4, max_backoff, "equal")
        # SQLite serialises writers anyway; parallel partitions would only queue.
        self._concurrency = concurrency if is_postgres(engine) else 1
        self._wake = asyncio.Event()
        self._stopping = False
        self.stats = RelayStats()

    def notify(self) -> None:
        """Wake the relay now (call after committing a transaction that added events)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Relay until `stop()`. Errors are logged and retried with backoff."""
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                _published, failed, more = await self._relay_pass()
            except Exception:
                log.exception("outbox relay pass failed")
                failed, more = True, False
            if failed:
                failures += 1
                delay = self._backoff.delay(failures)
            else:
                failures = 0
                delay = 0.0 if more else self._poll_interval
            if delay > 0:
                await self._sleep(delay)

    async def relay_once(self) -> int:
        """One pass: up to one batch from each partition with a backlog. Returns how
        many events were published."""
        published, _failed, _more = await self._relay_pass()
        return published

    async def _sleep(self, delay: float) -> None:
        await wait_event(self._wake, delay)

    async def _relay_pass(self) -> tuple[int, bool, bool]:
        partitions = await self._partitions_with_backlog()
        # Replicas start from different partitions so they don't queue on the same one.
        random.shuffle(partitions)
        limit = asyncio.Semaphore(self._concurrency)

        async def relay(partition: int) -> _PartitionResult:
            async with limit:
                return await self._relay_partition(partition)

        results = await asyncio.gather(*(relay(p) for p in partitions))
        return (
            sum(r.published for r in results),
            any(r.failed for r in results),
            any(r.full for r in results),
        )

    async def _partitions_with_backlog(self) -> list[int]:
        async with self._engine.connect() as conn:
            result = await conn.scalars(
                select(outbox.c.partition).where(outbox.c.published_at.is_(None)).distinct()
            )
            return list(result)

    async def _relay_partition(self, partition: int) -> _PartitionResult:
        async with self._engine.begin() as conn:
            if is_postgres(conn):
                locked = await conn.scalar(
                    select(func.pg_try_advisory_xact_lock(_LOCK_NAMESPACE, partition))
                )
                if not locked:
                    return _PartitionResult(published=0, failed=False, full=False)
            rows = (
                await conn.execute(
                    select(
                        outbox.c.seq,
                        outbox.c.id,
                        outbox.c.subject,
                        outbox.c.aggregate_id,
                        outbox.c.payload,
                    )
                    .where(outbox.c.partition == partition, outbox.c.published_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            acked = await self._publish_batch(rows)
            if acked:
                await self._mark_published(conn, acked)
        return _PartitionResult(
            published=len(acked),
            failed=len(acked) < len(rows),
            full=len(rows) == self._batch_size,
        )

    async def _publish_batch(self, rows: Sequence[Row[int, str, str, str, bytes]]) -> list[int]:
        """Publish rows, each aggregate's in `seq` order (one awaits the PubAck of
        the one before), different aggregates at once: a batch costs about as many
        PubAck round trips as its busiest aggregate has rows, not as it has rows.
        An aggregate stops at its first failure (its later rows wait, so the stream
        never sees them ahead of it). Returns the acked seqs."""
        by_aggregate: dict[str, list[Row[int, str, str, str, bytes]]] = {}
        for row in rows:
            by_aggregate.setdefault(row[3], []).append(row)
        done = await asyncio.gather(*(self._publish_in_order(g) for g in by_aggregate.values()))
        acked = sorted(seq for seqs in done for seq in seqs)
        PUBLISHED.inc(len(acked))
        self.stats.published += len(acked)
        return acked

    async def _publish_in_order(self, rows: Sequence[Row[int, str, str, str, bytes]]) -> list[int]:
        acked: list[int] = []
        for seq, event_id, subject, _aggregate, payload in rows:
            try:
                ack = await self._js.publish(
                    subject,
                    payload,
                    timeout=self._publish_timeout,
                    stream=EVENTS_STREAM,
                    headers={"Nats-Msg-Id": event_id},
                )
            except Exception as exc:
                # Later rows of this aggregate wait: publishing them now would put
                # them ahead of this one in the stream.
                PUBLISH_FAILURES.inc()
                self.stats.failures += 1
                log.warning(
                    "outbox publish failed: %s: %s",
                    type(exc).__name__,
                    exc,
                    extra={"event_id": event_id, "subject": subject},
                )
                break
            acked.append(seq)
            if ack.duplicate:
                DUPLICATES.inc()
                self.stats.duplicates += 1
        return acked

    async def _mark_published(self, conn: AsyncConnection, seqs: list[int]) -> None:
        await conn.execute(
            update(outbox).where(outbox.c.seq.in_(seqs)).values(published_at=self._clock())
        )
