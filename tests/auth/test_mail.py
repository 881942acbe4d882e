"""Mail and email verification through the real service: Register queues the
verification mail in its transaction, the sender delivers it over real SMTP to the
sandbox's sink (read back over real HTTP), the link verifies once, `user.email_verified`
is published once, access tokens carry the `ev` claim, and mail survives an SMTP
outage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
from nats.js import JetStreamContext
from sqlalchemy import select

from klik.auth.v1 import auth_pb2
from klik.events.v1.events_pb2 import UserEmailVerified
from sandbox.mail import SmtpSink
from services.auth import store
from tests.auth.conftest import PASSWORD, Auth, AuthStack, MailReader, failure, published
from tests.helpers import wait_for

VERIFY = "/verify-email"


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def fresh_email() -> str:
    return f"mail-{uuid.uuid4().hex[:10]}@example.com"


async def test_register_mails_a_link_that_verifies_once(
    stack: AuthStack, mail: MailReader, js: JetStreamContext
) -> None:
    auth = await stack.start(KLIK_PUBLIC_URL="https://klik.example/app/")
    email = fresh_email()
    session = await auth.register(email, name="Ada <Lovelace>")
    assert session.user.email_verified is False
    assert claims(session.access_token)["ev"] is False

    [message] = await mail.arrived(email)
    assert message["to"] == email
    assert "klik" in message["from"]
    assert message["subject"] == "Confirm your email address for klik"
    assert f"https://klik.example/app{VERIFY}?token=" in message["text"]
    assert "Hello Ada <Lovelace>," in message["text"]
    # The HTML body escapes what the user typed and carries the same link.
    assert "Ada &lt;Lovelace&gt;" in message["html"] and "<Lovelace>" not in message["html"]
    token = await mail.token(email, VERIFY)
    assert f'href="https://klik.example/app{VERIFY}?token={token}"' in message["html"]
    # Only the digest is stored.
    async with auth.uow.read() as db:
        stored = (await db.execute(select(store.email_tokens.c.token_hash))).scalars().all()
    assert token not in stored

    verified = await auth.stub.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token), timeout=10)
    assert (verified.user.id, verified.user.email_verified) == (session.user.id, True)
    # Following the link again answers the same and changes nothing.
    again = await auth.stub.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token), timeout=10)
    assert again.user.email_verified is True
    assert (await auth.me(session.access_token)).email_verified is True

    events = await published(js, auth, "user.email_verified", session.user.id)
    assert len(events) == 1
    payload = UserEmailVerified.FromString(events[0].payload.value)
    assert (payload.user_id, payload.email) == (session.user.id, email)

    # Tokens issued from now on say so (the one from before still says false).
    assert claims((await auth.refresh(session)).access_token)["ev"] is True
    assert claims((await auth.login(email)).access_token)["ev"] is True
    # Exactly one mail went out.
    assert len(await mail.messages(email)) == 1


async def test_verification_tokens_are_refused_when_unknown_or_expired(
    stack: AuthStack, mail: MailReader
) -> None:
    auth = await stack.start(KLIK_EMAIL_VERIFICATION_TTL_SECONDS="1")
    refused = (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_VERIFICATION_TOKEN")
    unknown = auth_pb2.VerifyEmailRequest(token="nope")
    assert await failure(auth.stub.VerifyEmail(unknown)) == refused
    email = fresh_email()
    session = await auth.register(email)
    token = await mail.token(email, VERIFY)
    expired_at = datetime.now(UTC) + timedelta(seconds=1)
    await wait_for(lambda: datetime.now(UTC) > expired_at, message="token expires")
    assert await failure(auth.stub.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token))) == refused
    assert (await auth.me(session.access_token)).email_verified is False


async def test_resend_is_throttled_and_refused_once_verified(
    stack: AuthStack, mail: MailReader
) -> None:
    throttled = await stack.start()
    email = fresh_email()
    session = await throttled.register(email)
    await mail.arrived(email)
    code, reason = await failure(
        throttled.stub.ResendVerification(
            auth_pb2.ResendVerificationRequest(), metadata=session.metadata, timeout=10
        )
    )
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS")

    auth = await stack.start(KLIK_VERIFICATION_RESEND_SECONDS="0")
    await auth.stub.ResendVerification(
        auth_pb2.ResendVerificationRequest(), metadata=session.metadata, timeout=10
    )
    first, second = await mail.token(email, VERIFY, 0), await mail.token(email, VERIFY, 1)
    assert first != second
    await auth.stub.VerifyEmail(auth_pb2.VerifyEmailRequest(token=second), timeout=10)
    assert await failure(
        auth.stub.ResendVerification(
            auth_pb2.ResendVerificationRequest(), metadata=session.metadata, timeout=10
        )
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "EMAIL_ALREADY_VERIFIED")
    # The older link verifies nothing more (the account is verified: same answer).
    reply = await auth.stub.VerifyEmail(auth_pb2.VerifyEmailRequest(token=first), timeout=10)
    assert reply.user.email_verified is True


async def test_mail_survives_an_smtp_outage(stack: AuthStack, mail: MailReader) -> None:
    auth: Auth = await stack.start()
    sink: SmtpSink = mail.smtp
    sink.stop()
    email = fresh_email()
    await auth.stub.Register(
        auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Offline"),
        timeout=10,
    )

    async def failed_twice() -> bool:
        async with auth.uow.read() as db:
            attempts = await db.scalar(
                select(store.mail_outbox.c.attempts).where(store.mail_outbox.c.to_address == email)
            )
        return int(attempts or 0) >= 2

    # The sender keeps trying while the sink is down (backoff capped at 1 s here).
    await wait_for(failed_twice, message="two failed deliveries")
    assert await mail.messages(email) == []
    sink.start()
    [message] = await mail.arrived(email)
    assert message["subject"].startswith("Confirm")
    query = select(store.mail_outbox).where(store.mail_outbox.c.to_address == email)

    async def marked_sent() -> bool:
        # The sender records the delivery in its own transaction after the sink took it.
        async with auth.uow.read() as db:
            return (await db.execute(query)).one().sent_at is not None

    await wait_for(marked_sent, message="the delivery recorded")
    async with auth.uow.read() as db:
        row = (await db.execute(query)).one()
    assert row.sent_at is not None and row.attempts >= 1
    # Once out, never again.
    await auth.login(email)
    assert len(await mail.messages(email)) == 1
