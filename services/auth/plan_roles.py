"""The role `premium`, from the wallet's plan events: auth is the only owner of
roles, so the wallet publishes `wallet.plan_changed` and auth gives or takes away
`premium` on the account (domain.role_with_plan), in the consumer's transaction.

Out-of-order safe: each event carries the wallet's per-user version, and an event
not newer than the last one applied to the account changes nothing. The new role
is in the account's next access token (the next refresh)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from klik.events.v1.events_pb2 import PlanChanged
from services.auth import domain, events, store


async def apply_plan(
    session: AsyncSession, event: PlanChanged, now: datetime | None = None
) -> bool:
    """Apply one `wallet.plan_changed`; whether it changed the account's role."""
    now = now or datetime.now(UTC)
    account = await store.account_by_id(session, event.user_id, for_update=True)
    if account is None:
        return False  # deleted (or never an account): nothing to give
    if not await store.advance_plan_state(session, account.id, event.version, event.premium, now):
        return False  # an older event than one applied already
    role = domain.role_with_plan(account.role, event.premium)
    if role == account.role:
        return False
    await store.set_role(session, account.id, role)
    await events.user_role_changed(session, account.id, account.role, role)
    return True
