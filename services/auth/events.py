"""Events the auth service publishes (through the outbox, in the transaction of the
change they report, a `resources.uow.write()` session) and consumes
(`wallet.plan_changed`: the role `premium`, plan_roles.py). The unit of work wakes
the relay once the transaction commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.consumer import EventConsumer
from kit.outbox import add_event
from kit.revocations import SESSION_REVOKED, USER_DELETED  # the kit's feed hears them
from kit.server import Resources
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import (
    PlanChanged,
    SessionRevoked,
    UserDeleted,
    UserEmailVerified,
    UserProfileChanged,
    UserRegistered,
    UserRoleChanged,
)
from services.auth import plan_roles
from services.auth.domain import Account

USER_REGISTERED = event_type_of(UserRegistered)
USER_ROLE_CHANGED = event_type_of(UserRoleChanged)
USER_EMAIL_VERIFIED = event_type_of(UserEmailVerified)
USER_PROFILE_CHANGED = event_type_of(UserProfileChanged)


async def user_registered(session: AsyncSession, account: Account) -> None:
    payload = UserRegistered(
        user_id=account.id,
        email=account.email,
        display_name=account.display_name,
        role=account.role,
        handle=account.handle,
    )
    await add_event(session, USER_REGISTERED, payload, aggregate_id=account.id, user_id=account.id)


async def user_deleted(session: AsyncSession, user_id: str) -> None:
    await add_event(
        session, USER_DELETED, UserDeleted(user_id=user_id), aggregate_id=user_id, user_id=user_id
    )


async def user_role_changed(
    session: AsyncSession, user_id: str, old_role: str, new_role: str
) -> None:
    payload = UserRoleChanged(user_id=user_id, old_role=old_role, new_role=new_role)
    await add_event(session, USER_ROLE_CHANGED, payload, aggregate_id=user_id, user_id=user_id)


async def user_email_verified(session: AsyncSession, user_id: str, email: str) -> None:
    payload = UserEmailVerified(user_id=user_id, email=email)
    await add_event(session, USER_EMAIL_VERIFIED, payload, aggregate_id=user_id, user_id=user_id)


async def user_profile_changed(session: AsyncSession, account: Account) -> None:
    """The whole public profile after the change (never the email)."""
    payload = UserProfileChanged(
        user_id=account.id,
        handle=account.handle,
        display_name=account.display_name,
        bio=account.bio,
        avatar_url=account.avatar_url,
    )
    await add_event(
        session, USER_PROFILE_CHANGED, payload, aggregate_id=account.id, user_id=account.id
    )


async def sessions_revoked(
    session: AsyncSession, user_id: str, session_ids: Sequence[str], revoked_at: datetime
) -> None:
    """One `session.revoked` per ended session: every service's revocation feed then
    refuses the access tokens issued from it."""
    for session_id in session_ids:
        payload = SessionRevoked(user_id=user_id, session_id=session_id)
        payload.revoked_at.FromDatetime(revoked_at)
        await add_event(session, SESSION_REVOKED, payload, aggregate_id=session_id, user_id=user_id)


PLAN_CHANGED = event_type_of(PlanChanged)


def consumers(resources: Resources, prefix: str = "auth") -> Sequence[EventConsumer]:
    """The durable consumers this service runs (replicas share them)."""
    assert resources.js is not None

    async def plan_changed(session: AsyncSession, envelope: Envelope, event: PlanChanged) -> None:
        await plan_roles.apply_plan(session, event)

    return (
        EventConsumer(
            resources.engine,
            resources.js,
            consumer=f"{prefix}-plan-changed",
            event_type=PLAN_CHANGED,
            handler=plan_changed,
            payload_type=PlanChanged,
        ),
    )
