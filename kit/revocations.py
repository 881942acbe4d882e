"""Deleted users' and ended sessions' access tokens stop working on every replica of
every service.

Access tokens are verified locally (kit.tokens) and live up to
`KLIK_ACCESS_TOKEN_TTL_SECONDS`, so a deleted account's token would otherwise keep
working until it expires. When auth deletes an account it publishes `user.deleted`;
when it ends a session (RevokeSession, Logout, a password change or reset, a reused
refresh token) it publishes `session.revoked`. Each replica runs one `RevocationFeed`
that hears both and calls `callers.revoke(user_id)` or
`callers.revoke_session(session_id)` (tokens whose `sid` claim names it) for as long
as any token issued before the event can still pass verification (its lifetime plus
the verifier's leeway).

The feed is an ephemeral, ordered JetStream consumer per replica rather than a
durable one: a durable consumer shares its messages between replicas, but every
replica needs every deletion. It starts at now - (token lifetime + leeway), so a
replica that starts or restarts also learns of recent deletions whose tokens may still
be live. Nothing is written: the revocation list is in memory, rebuilt from the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from kit.bus import EVENTS_STREAM, event_subject, event_type_of, unsubscribe_quietly
from kit.callers import Callers, RevokedUsers
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import SessionRevoked, UserDeleted

__all__ = ["SESSION_REVOKED", "USER_DELETED", "RevocationFeed"]

log = logging.getLogger(__name__)

USER_DELETED = event_type_of(UserDeleted)
SESSION_REVOKED = event_type_of(SessionRevoked)


class RevocationFeed:
    """Revokes deleted users and ended sessions in `callers` for `token_lifetime`
    seconds after the event (the access-token TTL plus the verifier's leeway)."""

    def __init__(
        self, js: JetStreamContext, callers: Callers | RevokedUsers, *, token_lifetime: float
    ) -> None:
        self._js = js
        self._callers = callers
        self._lifetime = token_lifetime
        self._subscriptions: list[JetStreamContext.PushSubscription] = []

    async def start(self) -> None:
        """Subscribe; events of the last `token_lifetime` seconds arrive first."""
        await self.stop()  # a retried start begins again
        since = datetime.now(UTC) - timedelta(seconds=self._lifetime)
        for event_type in (USER_DELETED, SESSION_REVOKED):
            self._subscriptions.append(
                await self._js.subscribe(
                    event_subject(event_type),
                    stream=EVENTS_STREAM,
                    cb=self._on_message,
                    # Ordered: the client recreates the consumer after a gap or a missed
                    # heartbeat (a NATS outage), resuming after the last message it saw.
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.BY_START_TIME,
                    config=ConsumerConfig(opt_start_time=since),
                )
            )

    async def stop(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            await unsubscribe_quietly(subscription, "revocation feed")

    async def _on_message(self, msg: Msg) -> None:
        try:
            self.apply(Envelope.FromString(msg.data))
        except (DecodeError, ValueError) as exc:
            log.error("unreadable revocation event on %s: %s", msg.subject, exc)

    def apply(self, envelope: Envelope) -> None:
        """Revoke the user an envelope's `UserDeleted` names, or the session its
        `SessionRevoked` names, until the last token issued before it has expired."""
        if envelope.type == SESSION_REVOKED:
            ended = _unpack(envelope, SessionRevoked(), "session_id")
            self._revoke(envelope, self._callers.revoke_session, "session_id", ended.session_id)
        else:
            deleted = _unpack(envelope, UserDeleted(), "user_id")
            self._revoke(envelope, self._callers.revoke, "user_id", deleted.user_id)

    def _revoke(self, envelope: Envelope, revoke: Callable[..., None], what: str, key: str) -> None:
        occurred = envelope.occurred_at.ToDatetime(UTC).timestamp()
        remaining = occurred + self._lifetime - time.time()
        if remaining > 0:
            revoke(key, for_seconds=remaining)
            log.info("token revocation", extra={what: key, "for_seconds": remaining})


_Payload = TypeVar("_Payload", SessionRevoked, UserDeleted)


def _unpack(envelope: Envelope, payload: _Payload, key: str) -> _Payload:
    if not envelope.payload.Unpack(payload) or not getattr(payload, key):
        name = type(payload).__name__
        raise ValueError(f"payload is {envelope.payload.TypeName()!r}, not a {name}")
    return payload
