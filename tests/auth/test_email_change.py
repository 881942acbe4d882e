"""Change of email end to end: the request proves the password, the link goes to the
new address and a notice to the old one (real SMTP to the sandbox sink, read over
HTTP), the link switches the account once, the new address counts as verified, and
taken addresses are refused at either step."""

from __future__ import annotations

import uuid

import grpc
from nats.js import JetStreamContext

from klik.auth.v1 import auth_pb2
from klik.events.v1.events_pb2 import UserEmailVerified
from tests.auth.conftest import PASSWORD, Auth, MailReader, failure, published

CONFIRM = "/confirm-email"


def fresh_email() -> str:
    return f"move-{uuid.uuid4().hex[:10]}@example.com"


async def test_change_email_end_to_end(auth: Auth, mail: MailReader, js: JetStreamContext) -> None:
    old, new = fresh_email(), fresh_email()
    session = await auth.register(old)
    wrong = auth_pb2.RequestEmailChangeRequest(new_email=new, password="not the password")
    assert await failure(auth.stub.RequestEmailChange(wrong, metadata=session.metadata)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    await auth.stub.RequestEmailChange(
        auth_pb2.RequestEmailChangeRequest(new_email=new.upper(), password=PASSWORD),
        metadata=session.metadata,
        timeout=10,
    )
    token = await mail.token(new, CONFIRM)
    [link_mail] = await mail.messages(new)
    assert link_mail["subject"] == "Confirm your new email address for klik"
    # The old address is told (after its verification mail from Register).
    [_, notice] = await mail.arrived(old, 2)
    assert notice["subject"] == "Your klik email address is being changed"
    assert new in notice["text"]
    # Nothing changed yet.
    assert (await auth.me(session.access_token)).email == old

    reply = await auth.stub.ConfirmEmailChange(
        auth_pb2.ConfirmEmailChangeRequest(token=token), timeout=10
    )
    assert (reply.user.email, reply.user.email_verified) == (new, True)
    assert (await auth.me(session.access_token)).email == new
    assert (await auth.login(new)).user.id == session.user.id
    assert await failure(auth.login(old)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    # The link works once.
    again = auth.stub.ConfirmEmailChange(auth_pb2.ConfirmEmailChangeRequest(token=token))
    assert await failure(again) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_EMAIL_CHANGE_TOKEN")
    [event] = await published(js, auth, "user.email_verified", session.user.id)
    assert UserEmailVerified.FromString(event.payload.value).email == new


async def test_a_taken_address_is_refused(auth: Auth, mail: MailReader) -> None:
    session = await auth.register()
    other = await auth.register()
    taken = auth_pb2.RequestEmailChangeRequest(new_email=other.user.email, password=PASSWORD)
    assert await failure(auth.stub.RequestEmailChange(taken, metadata=session.metadata)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "EMAIL_TAKEN",
    )
    same = auth_pb2.RequestEmailChangeRequest(new_email=session.user.email, password=PASSWORD)
    assert await failure(auth.stub.RequestEmailChange(same, metadata=session.metadata)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "EMAIL_UNCHANGED",
    )
    # Taken between the request and the link: the confirmation is refused.
    wanted = fresh_email()
    await auth.stub.RequestEmailChange(
        auth_pb2.RequestEmailChangeRequest(new_email=wanted, password=PASSWORD),
        metadata=session.metadata,
        timeout=10,
    )
    token = await mail.token(wanted, CONFIRM)
    await auth.register(wanted)
    late = auth.stub.ConfirmEmailChange(auth_pb2.ConfirmEmailChangeRequest(token=token))
    assert await failure(late) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")
    assert (await auth.me(session.access_token)).email == session.user.email
