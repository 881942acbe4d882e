"""Deleted users' access tokens stop working on every replica of every service.

Access tokens are verified locally (kit.tokens) and live up to
`KLIK_ACCESS_TOKEN_TTL_SECONDS`, so a deleted account's token would otherwise keep
working until it expires. When auth deletes an account it publishes `user.deleted`;
each replica runs one `RevocationFeed` that hears it and calls
`callers.revoke(user_id)` for as long as any token issued before the deletion can
still pass verification (its lifetime plus the verifier's leeway).

The feed is an ephemeral, ordered JetStream consumer per replica rather than a
durable one: a durable consumer shares its messages between replicas, but every
replica needs every deletion. It starts at now - (token lifetime + leeway), so a
replica that starts or restarts also learns of recent deletions whose tokens may still
be live. Nothing is written: the revocation list is in memory, rebuilt from the stream.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from kit.bus import EVENTS_STREAM, event_subject, event_type_of, unsubscribe_quietly
from kit.callers import Callers, RevokedUsers
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import UserDeleted

__all__ = ["USER_DELETED", "RevocationFeed"]

log = logging.getLogger(__name__)

USER_DELETED = event_type_of(UserDeleted)


class RevocationFeed:
    """Revokes deleted users in `callers` for `token_lifetime` seconds after their
    deletion (the access-token TTL plus the verifier's leeway)."""

    def __init__(
        self, js: JetStreamContext, callers: Callers | RevokedUsers, *, token_lifetime: float
    ) -> None:
        self._js = js
        self._callers = callers
        self._lifetime = token_lifetime
        self._subscription: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        """Subscribe; deletions of the last `token_lifetime` seconds arrive first."""
        since = datetime.now(UTC) - timedelta(seconds=self._lifetime)
        self._subscription = await self._js.subscribe(
            event_subject(USER_DELETED),
            stream=EVENTS_STREAM,
            cb=self._on_message,
            # Ordered: the client recreates the consumer after a gap or a missed
            # heartbeat (a NATS outage), resuming after the last message it saw.
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            config=ConsumerConfig(opt_start_time=since),
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await unsubscribe_quietly(subscription, "revocation feed")

    async def _on_message(self, msg: Msg) -> None:
        try:
            self.apply(Envelope.FromString(msg.data))
        except (DecodeError, ValueError) as exc:
            log.error("unreadable %s event: %s", USER_DELETED, exc)

    def apply(self, envelope: Envelope) -> None:
        """Revoke the user an envelope's `UserDeleted` names, until the last token
        issued before the deletion has expired."""
        deleted = UserDeleted()
        if not envelope.payload.Unpack(deleted) or not deleted.user_id:
            raise ValueError(f"payload is {envelope.payload.TypeName()!r}, not a UserDeleted")
        occurred = envelope.occurred_at.ToDatetime(UTC).timestamp()
        remaining = occurred + self._lifetime - time.time()
        if remaining > 0:
            self._callers.revoke(deleted.user_id, for_seconds=remaining)
            log.info("user revoked", extra={"user_id": deleted.user_id, "for_seconds": remaining})
