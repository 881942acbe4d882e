"""Sessions through the real auth service: ListSessions shows each refresh-token
family with its client, RevokeSession ends one, and `session.revoked` makes another
service (the real wallet, over real gRPC and NATS) refuse its access tokens within
seconds while the caller's own session goes on."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from nats.js import JetStreamContext

from kit import bus
from kit.callers import RevokedUsers
from kit.config import ServiceSettings
from kit.identity import generate_keys
from kit.revocations import RevocationFeed
from kit.server import Server
from klik.auth.v1 import auth_pb2
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import SessionRevoked
from klik.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from services.wallet.service import make_spec as wallet_spec
from services.wallet.settings import WalletOptions
from tests.auth.conftest import PASSWORD, Auth, AuthStack, Session, failure, published
from tests.helpers import envelope, stream_messages, unique, wait_for

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
NOT_FOUND = grpc.StatusCode.NOT_FOUND

WalletCall = Callable[[Session], Awaitable[wallet_pb2.GetWalletResponse]]


@pytest.fixture
async def wallet(
    stack: AuthStack, auth: Auth, make_database_url: Callable[[], str]
) -> AsyncIterator[WalletCall]:
    """The real wallet service on its own database, verifying tokens against `auth`
    and hearing revocations on the stack's NATS: `await wallet(session)` is GetWallet."""
    generate_keys(stack.keys_dir, ["wallet"])
    env = {"KLIK_AUTH_ADDR": f"127.0.0.1:{auth.port}", "KLIK_SERVICE_KEYS_DIR": str(stack.keys_dir)}
    settings = dataclasses.replace(
        ServiceSettings.from_env("wallet", env=env),
        port=0,
        metrics_port=0,
        database_url=make_database_url(),
        nats_url=stack.nats_url,
        grace_seconds=2.0,
    )
    options = WalletOptions(consumer_prefix=unique("wallet-sessions-"))
    server = Server(wallet_spec(options), settings)
    await server.start()
    await wait_for(server.ready.is_set, 30, message="wallet ready")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = wallet_pb2_grpc.WalletServiceStub(channel)

    async def get_wallet(session: Session) -> wallet_pb2.GetWalletResponse:
        reply: wallet_pb2.GetWalletResponse = await stub.GetWallet(
            wallet_pb2.GetWalletRequest(), metadata=session.metadata, timeout=10
        )
        return reply

    yield get_wallet
    await channel.close()
    await server.shutdown()


def from_client(agent: str) -> tuple[tuple[str, str], ...]:
    """What the gateway adds to a call (gateway.transcoding.metadata)."""
    return (("klik-user-agent", agent),)


async def sessions_of(auth: Auth, session: Session) -> list[auth_pb2.Session]:
    reply = await auth.stub.ListSessions(
        auth_pb2.ListSessionsRequest(), metadata=session.metadata, timeout=10
    )
    return list(reply.sessions)


async def revoke(auth: Auth, session: Session, session_id: str) -> Any:
    return await auth.stub.RevokeSession(
        auth_pb2.RevokeSessionRequest(session_id=session_id), metadata=session.metadata, timeout=10
    )


async def refused(call: Awaitable[Any]) -> bool:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return bool(error.code() == UNAUTHENTICATED)
    return False


async def answers(call: Awaitable[Any]) -> bool:
    try:
        await call
    except grpc.aio.AioRpcError:
        return False
    return True


async def test_sessions_are_listed_and_a_revoked_one_is_refused_everywhere(
    auth: Auth, wallet: WalletCall, js: JetStreamContext
) -> None:
    email = f"sessions-{uuid.uuid4().hex[:8]}@example.com"
    await auth.stub.Register(
        auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Sam"), timeout=10
    )
    laptop = await auth.login(email, metadata=from_client("Firefox/130 (laptop)"))
    phone = await auth.login(email, metadata=from_client("klik-ios/2.1"))
    # The wallet opens on user.registered; both sessions' tokens work there.
    await wait_for(lambda: answers(wallet(laptop)), 20, message="wallet opened")
    assert (await wallet(phone)).wallet.user_id == laptop.user.id

    listed = await sessions_of(auth, laptop)
    assert len(listed) == 2
    assert sum(s.current for s in listed) == 1
    by_agent = {s.user_agent: s for s in listed}
    assert set(by_agent) == {"Firefox/130 (laptop)", "klik-ios/2.1"}
    assert by_agent["Firefox/130 (laptop)"].current
    assert all(s.client_address == "127.0.0.1" for s in listed)
    assert all(s.created_at.seconds > 0 and s.last_used_at.seconds > 0 for s in listed)
    assert listed[0].id == by_agent["klik-ios/2.1"].id  # most recently used first

    # A refresh is a use: it moves the session first and records the new client.
    laptop = await auth.refresh(laptop)
    relisted = await sessions_of(auth, phone)
    assert relisted[0].id == by_agent["Firefox/130 (laptop)"].id
    # This refresh came without the gateway's metadata: the gRPC client's own agent.
    assert relisted[0].user_agent.startswith("grpc-python")
    assert [s.current for s in relisted] == [False, True]

    # Nobody revokes what is not theirs, or what does not exist.
    stranger = await auth.register()
    phone_id = by_agent["klik-ios/2.1"].id
    assert await failure(revoke(auth, stranger, phone_id)) == (NOT_FOUND, "SESSION_NOT_FOUND")
    assert await failure(revoke(auth, laptop, str(uuid.uuid4()))) == (
        NOT_FOUND,
        "SESSION_NOT_FOUND",
    )
    assert await answers(wallet(phone))

    await revoke(auth, laptop, phone_id)

    assert await failure(auth.refresh(phone)) == (UNAUTHENTICATED, "INVALID_REFRESH_TOKEN")
    # At once here; at the wallet as soon as session.revoked reaches it.
    assert await failure(auth.me(phone.access_token)) == (UNAUTHENTICATED, "INVALID_TOKEN")
    await wait_for(lambda: refused(wallet(phone)), 10, message="wallet refuses the session")
    assert await failure(wallet(phone)) == (UNAUTHENTICATED, "INVALID_TOKEN")
    # The caller's own session goes on, everywhere.
    assert (await wallet(laptop)).wallet.user_id == laptop.user.id
    assert (await auth.me(laptop.access_token)).id == laptop.user.id
    await auth.refresh(laptop)
    assert [s.id for s in await sessions_of(auth, laptop)] == [by_agent["Firefox/130 (laptop)"].id]
    # Revoking it again: it is no live session any more.
    assert await failure(revoke(auth, laptop, phone_id)) == (NOT_FOUND, "SESSION_NOT_FOUND")

    events = await published(js, auth, "session.revoked", phone_id)
    assert len(events) == 1
    payload = SessionRevoked()
    assert events[0].payload.Unpack(payload)
    assert (payload.user_id, payload.session_id) == (laptop.user.id, phone_id)
    assert payload.revoked_at.seconds > 0


async def test_a_password_change_revokes_the_other_sessions_access_tokens(
    auth: Auth, wallet: WalletCall, js: JetStreamContext
) -> None:
    here = await auth.register()
    there = await auth.login(here.user.email)
    await wait_for(lambda: answers(wallet(there)), 20, message="wallet opened")
    await auth.stub.ChangePassword(
        auth_pb2.ChangePasswordRequest(
            current_password=PASSWORD, new_password="another fine passphrase"
        ),
        metadata=here.metadata,
        timeout=10,
    )
    await wait_for(lambda: refused(wallet(there)), 10, message="wallet refuses the other session")
    assert (await wallet(here)).wallet.user_id == here.user.id
    listed = await sessions_of(auth, here)
    assert [(s.current, s.id) for s in listed] == [(True, listed[0].id)]
    revoked = await published_for_user(js, auth, here.user.id)
    assert len(revoked) == 1 and revoked[0].aggregate_id != listed[0].id


async def published_for_user(js: JetStreamContext, auth: Auth, user_id: str) -> list[Envelope]:
    """The `session.revoked` events of the user's sessions in the stream."""
    await wait_for(auth.outbox_drained, message="outbox drained")
    messages = await stream_messages(js, bus.EVENTS_STREAM, bus.event_subject("session.revoked"))
    envelopes = [Envelope.FromString(msg.data) for msg in messages]
    return [env for env in envelopes if env.user_id == user_id]


class RecordingCallers:
    def __init__(self) -> None:
        self.users: dict[str, float] = {}
        self.sessions: dict[str, float] = {}

    def revoke(self, user_id: str, for_seconds: float = 3600.0) -> None:
        self.users[user_id] = for_seconds

    def revoke_session(self, session_id: str, for_seconds: float = 3600.0) -> None:
        self.sessions[session_id] = for_seconds


def test_the_feed_revokes_a_session_until_its_last_token_expires() -> None:
    callers = RecordingCallers()
    feed = RevocationFeed(js=None, callers=callers, token_lifetime=930.0)  # type: ignore[arg-type]
    recent = envelope("session.revoked", SessionRevoked(user_id="u", session_id="s1"))
    old = envelope("session.revoked", SessionRevoked(user_id="u", session_id="s2"))
    old.occurred_at.FromDatetime(datetime.now(UTC) - timedelta(seconds=931))
    feed.apply(recent)
    feed.apply(old)
    assert list(callers.sessions) == ["s1"] and 929 < callers.sessions["s1"] <= 930
    assert callers.users == {}  # a session, not its user
    with pytest.raises(ValueError, match="SessionRevoked"):
        feed.apply(envelope("session.revoked", SessionRevoked(user_id="u")))


def test_revoked_sessions_are_refused_only_while_they_could_live() -> None:
    revoked = RevokedUsers()
    revoked.revoke_session("s1", for_seconds=60)
    revoked.revoke_session("gone", for_seconds=-1)
    assert revoked.is_session_revoked("s1")
    assert not revoked.is_session_revoked("gone")
    assert not revoked.is_session_revoked("")  # a token without a sid claim
    assert not revoked.is_revoked("s1")  # sessions and users are apart
