"""The tables of social sign-in (on auth's `store.metadata`, migration auth_0005)
and the queries on them. As in store.py, every function takes the use case's
session and never commits.

    oidc_identities   (provider, subject) -> account: who an identity signs in
    oidc_flows        started sign-ins: state (SHA-256 only), nonce, PKCE verifier,
                      where to send the browser; single use, short-lived
    oidc_tickets      the callback's one-time codes and the link tokens (SHA-256 only)"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc
from services.auth.store import Timestamp, metadata

identities = Table(
    "oidc_identities",
    metadata,
    Column("provider", String(40), nullable=False),
    Column("subject", String(255), nullable=False),  # the ID token's `sub`
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(254), nullable=False),  # as the provider gave it, at linking
    Column("created_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("provider", "subject", name="pk_oidc_identities"),
)
# One identity of a provider per account.
Index("uq_oidc_identities_provider_user", identities.c.provider, identities.c.user_id, unique=True)

flows = Table(
    "oidc_flows",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("provider", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("redirect", Text, nullable=False),  # the app page the callback ends on
    Column("app_state", String(200), nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
)
Index("ix_oidc_flows_expires_at", flows.c.expires_at)

tickets = Table(
    "oidc_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("purpose", String(10), nullable=False),  # TicketPurpose
    Column("outcome", String(20), nullable=False),  # Outcome
    Column("provider", String(40), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("email", String(254), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
)
Index("ix_oidc_tickets_expires_at", tickets.c.expires_at)


class TicketPurpose:
    EXCHANGE = "exchange"  # the callback's one-time code (ExchangeOidcCode)
    LINK = "link"  # a link token (LinkOidcIdentity)


class Outcome:
    SIGNED_IN = "signed_in"  # the identity is the account's: tokens
    LINK_REQUIRED = "link_required"  # the account must be proved first


@dataclass(frozen=True)
class Flow:
    provider: str
    nonce: str
    code_verifier: str
    redirect: str
    app_state: str
    expires_at: datetime
    used: bool


@dataclass(frozen=True)
class Ticket:
    purpose: str
    outcome: str
    provider: str
    subject: str
    email: str
    user_id: str
    expires_at: datetime
    used: bool


def _values(record: Flow | Ticket, now: datetime) -> dict[str, Any]:
    """A flow's or ticket's row: its fields but `used` (a new one is unused)."""
    values = {key: value for key, value in asdict(record).items() if key != "used"}
    return {**values, "created_at": now}


async def insert_flow(session: AsyncSession, state_hash: str, flow: Flow, now: datetime) -> None:
    await session.execute(insert(flows).values(state_hash=state_hash, **_values(flow, now)))


async def spend_flow(session: AsyncSession, state_hash: str, now: datetime) -> Flow | None:
    """The flow of `state_hash`, marked used by this call; None when it is unknown
    or was used already (of two concurrent callbacks, one gets it)."""
    spent = await session.execute(
        update(flows)
        .where(flows.c.state_hash == state_hash, flows.c.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = (await session.execute(select(flows).where(flows.c.state_hash == state_hash))).one()
    return Flow(
        provider=row.provider,
        nonce=row.nonce,
        code_verifier=row.code_verifier,
        redirect=row.redirect,
        app_state=row.app_state,
        expires_at=as_utc(row.expires_at),
        used=False,
    )


async def forget_expired(session: AsyncSession, before: datetime) -> None:
    """Drop flows and tickets that expired before `before`."""
    await session.execute(delete(flows).where(flows.c.expires_at < before))
    await session.execute(delete(tickets).where(tickets.c.expires_at < before))


async def identity_user(session: AsyncSession, provider: str, subject: str) -> str | None:
    return await session.scalar(
        select(identities.c.user_id).where(
            identities.c.provider == provider, identities.c.subject == subject
        )
    )


async def insert_identity(
    session: AsyncSession, provider: str, subject: str, user_id: str, email: str, now: datetime
) -> None:
    """Raises sqlalchemy's IntegrityError when the identity or the account's identity
    of this provider exists."""
    await session.execute(
        insert(identities).values(
            provider=provider, subject=subject, user_id=user_id, email=email, created_at=now
        )
    )


async def identities_of(session: AsyncSession, user_id: str) -> list[tuple[str, str]]:
    """(provider, subject) of every identity linked to the account."""
    rows = await session.execute(
        select(identities.c.provider, identities.c.subject)
        .where(identities.c.user_id == user_id)
        .order_by(identities.c.provider)
    )
    return [(row.provider, row.subject) for row in rows]


async def insert_ticket(
    session: AsyncSession, ticket_hash: str, ticket: Ticket, now: datetime
) -> None:
    await session.execute(insert(tickets).values(ticket_hash=ticket_hash, **_values(ticket, now)))


def _ticket(row: Row[Any]) -> Ticket:
    return Ticket(
        purpose=row.purpose,
        outcome=row.outcome,
        provider=row.provider,
        subject=row.subject,
        email=row.email,
        user_id=row.user_id,
        expires_at=as_utc(row.expires_at),
        used=row.used_at is not None,
    )


async def ticket(
    session: AsyncSession, ticket_hash: str, purpose: str, *, for_update: bool = False
) -> Ticket | None:
    query = select(tickets).where(
        tickets.c.ticket_hash == ticket_hash, tickets.c.purpose == purpose
    )
    row = (await session.execute(query.with_for_update() if for_update else query)).first()
    return None if row is None else _ticket(row)


async def spend_ticket(session: AsyncSession, ticket_hash: str, now: datetime) -> bool:
    """Mark the ticket used; whether this call did (it was not used yet)."""
    spent = await session.execute(
        update(tickets)
        .where(tickets.c.ticket_hash == ticket_hash, tickets.c.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]
