"""Durable event consumers that apply each event exactly once to the service database.

For every message: in ONE transaction record (consumer, event id) in
`processed_events` and run the handler; commit; only then ack. A redelivery (crash
before the ack, a duplicate publish, another replica racing) finds the id recorded
and changes nothing. A handler that keeps failing is retried with a growing delay and,
on its `max_deliver`-th delivery, moved to `klik.dlq.<consumer>`.

A message that never gets an outcome (its consumer crashes or hangs on every
delivery, so the count above is never checked) is stopped by JetStream itself: the
durable consumer has the same `max_deliver`, and the server's MAX_DELIVERIES
advisory for it (`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`)
makes one replica copy the stored message to the same dead-letter subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Generic

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from typing_extensions import TypeVar

from kit.backoff import Backoff
from kit.bus import DLQ_STREAM, EVENTS_STREAM, dead_letter_subject, event_subject
from kit.clock import Clock, utc_now
from kit.context import request_id_var
from kit.db import dialect_insert, session_factory
from kit.periodic import wait_event
from kit.tables import processed_events
from klik.events.v1.envelope_pb2 import Envelope

__all__ = ["EventConsumer", "Handler", "PoisonMessage"]

log = logging.getLogger(__name__)

CONSUMED = Counter(
    "klik_events_consumed_total",
    "Event deliveries by consumer and outcome (handled, duplicate, retried, dead_lettered, error).",
    ["consumer", "outcome"],
)

P = TypeVar("P", bound=Message, default=Message, covariant=True)

Handler = Callable[[AsyncSession, Envelope, P], Awaitable[None]]

# Header names on dead-lettered messages (the body is the original message data).
DLQ_ORIGINAL_SUBJECT = "Klik-Original-Subject"
DLQ_ORIGINAL_SEQUENCE = "Klik-Original-Sequence"
DLQ_EVENT_ID = "Klik-Event-Id"
DLQ_ERROR = "Klik-Error"
DLQ_DELIVERIES = "Klik-Deliveries"
# Subject of the server's advisory that a message reached the consumer's max_deliver.
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"


class PoisonMessage(Exception):
    """A message no retry can fix (unparseable, wrong payload type): dead-lettered at once."""


class EventConsumer(Generic[P]):
    """Applies `event_type` events to this service's database through `handler`.

    The handler gets the open session (its writes commit together with the inbox row;
    it must not commit), the envelope, and the payload unpacked as `payload_type`
    (an envelope whose payload is another type is poison and goes to the DLQ).
    The envelope's request id is in `kit.context.request_id_var` while it runs.

    Replicas share the durable JetStream consumer `consumer`, so each event goes to
    one of them; the inbox makes the rare double delivery a no-op.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        js: JetStreamContext,
        *,
        consumer: str,
        event_type: str,
        handler: Handler[P],
        payload_type: type[P],
        max_deliver: int = 5,
        ack_wait: float = 30.0,
        batch: int = 32,
        retry_delay: float = 1.0,
        max_retry_delay: float = 60.0,
        fetch_timeout: float = 2.0,
        max_restart_delay: float = 30.0,
        clock: Clock = utc_now,
    ) -> None:
        self.consumer = consumer
        self.event_type = event_type
        self._engine = engine
        self._sessions = session_factory(engine)
        self._js = js
        self._handler = handler
        self._payload_type = payload_type
        self._max_deliver = max_deliver
        self._ack_wait = ack_wait
        self._batch = batch
        # JetStream schedules the redelivery: the delay itself needs no jitter.
        self._redelivery = Backoff(retry_delay, max_retry_delay, "none")
        self._fetch_timeout = fetch_timeout
        # After a failed batch (bus or database down): 1 s, 2 s, … `max_restart_delay`.
        self._restart = Backoff(1.0, max_restart_delay, "none")
        self._clock = clock
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._advisories: Subscription | None = None
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        """Stop consuming: a fetch waiting for messages ends now; a batch being
        processed is finished first (its messages are acked or retried as usual)."""
        self._stopped.set()

    async def run(self) -> None:
        """Consume until `stop()`. Bus and database errors are logged and retried."""
        failures = 0
        while not self._stopped.is_set():
            try:
                await self.process_batch()
                failures = 0
            except Exception:
                failures += 1
                # A fetch cut short by stop() ends here too; that is no failure.
                if not self._stopped.is_set():
                    log.exception("consumer %s failed, retrying", self.consumer)
                await wait_event(self._stopped, self._restart.delay(failures))
        for subscription in (self._subscription, self._advisories):
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def process_batch(self, wait: float | None = None) -> int:
        """Fetch up to `batch` messages (waiting at most `wait` seconds for the first) and
        process them in order. Returns how many were fetched."""
        subscription = await self._subscribe()
        fetch = asyncio.ensure_future(
            subscription.fetch(self._batch, timeout=wait or self._fetch_timeout)
        )
        stopping = asyncio.ensure_future(self._stopped.wait())
        try:
            # A stop() ends the wait for messages at once (nothing fetched is lost:
            # what the server handed out and nobody acked is redelivered).
            await asyncio.wait((fetch, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
        if fetch.cancelled():
            return 0
        try:
            messages = fetch.result()
        except TimeoutError:  # nats.errors.TimeoutError is one too
            return 0
        for msg in messages:
            outcome = await self._process(msg)
            CONSUMED.labels(self.consumer, outcome).inc()
        return len(messages)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        if self._subscription is None:
            await self._ensure_consumer()
            self._subscription = await self._js.pull_subscribe_bind(
                durable=self.consumer, stream=EVENTS_STREAM
            )
        if self._advisories is None:
            # A queue group: one replica dead-letters each message that ran out.
            subject = MAX_DELIVERIES_ADVISORY.format(stream=EVENTS_STREAM, consumer=self.consumer)
            self._advisories = await self._js._nc.subscribe(
                subject, queue=self.consumer, cb=self._ran_out
            )
        return self._subscription

    async def _ensure_consumer(self) -> None:
        wanted = ConsumerConfig(
            name=self.consumer,
            durable_name=self.consumer,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=event_subject(self.event_type),
            ack_wait=self._ack_wait,
            # The same limit on the server: a delivery that fails is dead-lettered
            # here on its last attempt (with its error); one that never comes back
            # (a crash, a hang) stops there and its advisory dead-letters it.
            max_deliver=self._max_deliver,
        )
        try:
            current = (await self._js.consumer_info(EVENTS_STREAM, self.consumer)).config
        except NotFoundError:
            try:
                await self._js.add_consumer(EVENTS_STREAM, wanted)
                return
            except BadRequestError:
                # Another replica created it first.
                current = (await self._js.consumer_info(EVENTS_STREAM, self.consumer)).config
        if (
            current.filter_subject != wanted.filter_subject
            or abs((current.ack_wait or 0.0) - self._ack_wait) > 1e-3
            or current.max_deliver != wanted.max_deliver
        ):
            # Creating an existing durable with a changed (editable) config updates it.
            await self._js.add_consumer(EVENTS_STREAM, wanted)
            log.info("updated consumer %s", self.consumer)

    async def _process(self, msg: Msg) -> str:
        deliveries = msg.metadata.num_delivered
        envelope: Envelope | None = None
        try:
            envelope = self._parse(msg)
            applied = await self._apply(envelope)
        except PoisonMessage as exc:
            await self._dead_letter(msg, exc, envelope)
            return "dead_lettered"
        except Exception as exc:
            if deliveries >= self._max_deliver:
                await self._dead_letter(msg, exc, envelope)
                return "dead_lettered"
            delay = self._redelivery.delay(deliveries)
            log.warning(
                "handler failed (delivery %d of %d), retrying in %.2fs: %s: %s",
                deliveries,
                self._max_deliver,
                delay,
                type(exc).__name__,
                exc,
                extra={"consumer": self.consumer, "event_id": envelope.id if envelope else ""},
            )
            await msg.nak(delay=delay)
            return "retried"
        await self._ack(msg)
        return "handled" if applied else "duplicate"

    @staticmethod
    def _parse(msg: Msg) -> Envelope:
        try:
            envelope = Envelope.FromString(msg.data)
        except DecodeError as exc:
            raise PoisonMessage(f"not an Envelope: {exc}") from exc
        if not envelope.id:
            raise PoisonMessage("envelope has no id")
        return envelope

    def _unpack(self, envelope: Envelope) -> P:
        payload = self._payload_type()
        if not envelope.payload.Unpack(payload):
            raise PoisonMessage(
                f"payload is {envelope.payload.TypeName()!r}, "
                f"expected {payload.DESCRIPTOR.full_name!r}"
            )
        return payload

    async def _apply(self, envelope: Envelope) -> bool:
        """Run the handler unless this consumer already processed the event. Returns
        whether it ran."""
        payload = self._unpack(envelope)
        token = request_id_var.set(envelope.request_id)
        try:
            async with self._sessions() as session, session.begin():
                if not await self._claim(session, envelope.id):
                    return False
                await self._handler(session, envelope, payload)
            return True
        finally:
            request_id_var.reset(token)

    async def _claim(self, session: AsyncSession, event_id: str) -> bool:
        # ON CONFLICT DO NOTHING rather than catching a unique violation: a racing
        # replica's INSERT waits for the winner's transaction, then inserts nothing,
        # and this transaction stays usable.
        claimed = await session.scalar(
            dialect_insert(self._engine, processed_events)
            .values(consumer=self.consumer, event_id=event_id, processed_at=self._clock())
            .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
            .returning(processed_events.c.event_id)
        )
        return claimed is not None

    async def _dead_letter(self, msg: Msg, exc: Exception, envelope: Envelope | None) -> None:
        meta = msg.metadata
        event_id = envelope.id if envelope is not None else ""
        log.error(
            "dead-lettering after %d deliveries: %s: %s",
            meta.num_delivered,
            type(exc).__name__,
            exc,
            extra={"consumer": self.consumer, "event_id": event_id},
        )
        await self._publish_dead_letter(
            msg.data,
            msg.subject,
            meta.sequence.stream,
            event_id,
            f"{type(exc).__name__}: {exc}",
            meta.num_delivered,
        )
        await msg.term()

    async def _ran_out(self, advisory: Msg) -> None:
        """The server gave up on a message after `max_deliver` deliveries without an
        outcome: copy it from the stream to the dead-letter subject."""
        try:
            fact = json.loads(advisory.data)
            sequence, deliveries = int(fact["stream_seq"]), int(fact["deliveries"])
            stored = await self._js.get_msg(EVENTS_STREAM, sequence)
            data = stored.data or b""
            try:
                event_id = Envelope.FromString(data).id
            except DecodeError:
                event_id = ""
            log.error(
                "dead-lettering after %d deliveries without an outcome",
                deliveries,
                extra={"consumer": self.consumer, "event_id": event_id},
            )
            await self._publish_dead_letter(
                data,
                stored.subject or "",
                sequence,
                event_id,
                f"no outcome after {deliveries} deliveries (the consumer crashed or hung)",
                deliveries,
            )
            CONSUMED.labels(self.consumer, "dead_lettered").inc()
        except Exception:
            log.exception("could not dead-letter a message %s gave up on", self.consumer)

    async def _publish_dead_letter(
        self, data: bytes, subject: str, sequence: int, event_id: str, error: str, deliveries: int
    ) -> None:
        await self._js.publish(
            dead_letter_subject(self.consumer),
            data,
            stream=DLQ_STREAM,
            headers={
                # The same original message dead-lettered twice (crash before term,
                # or both here and from its advisory) is stored once.
                "Nats-Msg-Id": f"{self.consumer}:{sequence}",
                DLQ_ORIGINAL_SUBJECT: subject,
                DLQ_ORIGINAL_SEQUENCE: str(sequence),
                DLQ_EVENT_ID: event_id,
                DLQ_ERROR: _header_value(error),
                DLQ_DELIVERIES: str(deliveries),
            },
        )

    async def _ack(self, msg: Msg) -> None:
        # After the commit: a crash before this line means a redelivery, which the
        # inbox turns into a no-op.
        await msg.ack()


def _header_value(text: str, limit: int = 1024) -> str:
    # NATS headers are single-line.
    return " ".join(text.split())[:limit]
