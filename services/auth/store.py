"""The auth service's tables and the queries on them (its own database only; SQLite
or PostgreSQL). The kit's outbox and processed-events tables come from the kit's own
migration branch.

Every function takes the use case's session (kit.db.UnitOfWork) and never commits: the use cases
decide what one transaction holds. Times are timezone-aware UTC in and out (SQLite
hands back naive datetimes; `_utc` restores the zone)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from kit import daily
from kit.db import as_utc, dialect_insert
from services.auth.domain import ADMIN, Account, Failures, Profile, RefreshToken

metadata = MetaData()

Timestamp = DateTime(timezone=True)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    # Normalised (domain.normalise_email), so the unique index is case-insensitive.
    Column("email", String(254), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # The address `email` holds was proved (a verification link was followed).
    Column("email_verified", Boolean, nullable=False, server_default=false()),
    # Public profile. `handle` is lower case (domain.valid_handle), NULL when none.
    Column("handle", String(30), nullable=True),
    Column("bio", Text, nullable=False, server_default=""),
    Column("avatar_asset_id", String(64), nullable=False, server_default=""),
    # Where content serves the avatar asset (AvatarService.ResolveAvatar), "" when none.
    Column("avatar_url", Text, nullable=False, server_default=""),
)
Index("uq_users_email", users.c.email, unique=True)
# One account per handle, whatever the case; of concurrent claims one insert or
# update wins, the others get an IntegrityError (HANDLE_TAKEN).
Index("uq_users_handle", func.lower(users.c.handle), unique=True)
# ListUsers pages newest first by (created_at, id).
Index("ix_users_created_at_id", users.c.created_at, users.c.id)

# A session is one refresh-token family: what one login started.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),  # absolute expiry
    Column("revoked_at", Timestamp, nullable=True),
    Column("revoked_reason", String(20), nullable=True),  # RevokeReason
    # The latest login or refresh, and the client that made it (ListSessions).
    Column("last_used_at", Timestamp, nullable=True),
    Column("user_agent", String(300), nullable=False, server_default=""),
    Column("client_address", String(100), nullable=False, server_default=""),
)
Index("ix_sessions_user_id", sessions.c.user_id)

# Only SHA-256 digests: a copy of this table gives no usable refresh token.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", String(36), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),  # idle expiry
    Column("spent_at", Timestamp, nullable=True),
)
Index("ix_refresh_tokens_session_id", refresh_tokens.c.session_id)

# Ed25519 keys that sign access tokens. `next` is published in the JWKS before it
# signs anything, `current` signs, `retired` only verifies until its tokens expired.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("status", String(10), nullable=False),
    # PKCS#8 PEM sealed with the KEK (kek.py: `kek1:<kek id>:…`); rows from before
    # auth_0004 held plain PEM until the first start sealed them.
    Column("private_key", Text, nullable=False),
    Column("public_key", String(64), nullable=False),  # JWK `x`: base64url, no padding
    Column("created_at", Timestamp, nullable=False),
    Column("activated_at", Timestamp, nullable=True),
    Column("retired_at", Timestamp, nullable=True),
)
# At most one `current` and one `next` key, whatever replicas race to rotate.
Index(
    "uq_signing_keys_live_status",
    signing_keys.c.status,
    unique=True,
    postgresql_where=signing_keys.c.status != "retired",
    sqlite_where=signing_keys.c.status != "retired",
)

# Recent failed logins per throttling key (`account:<email>`, `address:<ip>`).
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", Timestamp, nullable=False),
)
Index("ix_login_failures_last_failure_at", login_failures.c.last_failure_at)


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _changed(session: AsyncSession, statement: Executable) -> int:
    """How many rows an UPDATE or DELETE changed."""
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---- accounts --------------------------------------------------------------------------


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        role=row.role,
        password_hash=row.password_hash,
        created_at=as_utc(row.created_at),
        email_verified=bool(row.email_verified),
        handle=row.handle or "",
        bio=row.bio,
        avatar_asset_id=row.avatar_asset_id,
        avatar_url=row.avatar_url,
    )


async def insert_account(session: AsyncSession, account: Account) -> None:
    """Raises sqlalchemy's IntegrityError when the email is taken."""
    await session.execute(
        insert(users).values(
            id=account.id,
            email=account.email,
            display_name=account.display_name,
            role=account.role,
            password_hash=account.password_hash,
            created_at=account.created_at,
            email_verified=account.email_verified,
            handle=account.handle or None,
            bio=account.bio,
            avatar_asset_id=account.avatar_asset_id,
            avatar_url=account.avatar_url,
        )
    )


async def account_by_id(
    session: AsyncSession, user_id: str, *, for_update: bool = False
) -> Account | None:
    query = select(users).where(users.c.id == user_id)
    row = (await session.execute(query.with_for_update() if for_update else query)).first()
    return None if row is None else _account(row)


async def account_by_email(session: AsyncSession, email: str) -> Account | None:
    row = (await session.execute(select(users).where(users.c.email == email))).first()
    return None if row is None else _account(row)


async def account_by_handle(session: AsyncSession, handle: str) -> Account | None:
    row = (
        await session.execute(select(users).where(func.lower(users.c.handle) == handle.lower()))
    ).first()
    return None if row is None else _account(row)


async def set_profile(session: AsyncSession, user_id: str, profile: Profile) -> bool:
    """Store the account's profile. Raises sqlalchemy's IntegrityError when the
    handle is another account's."""
    query = (
        update(users)
        .where(users.c.id == user_id)
        .values(
            display_name=profile.display_name,
            handle=profile.handle or None,
            bio=profile.bio,
            avatar_asset_id=profile.avatar_asset_id,
            avatar_url=profile.avatar_url,
        )
    )
    return await _changed(session, query) == 1


async def replace_password_hash(
    session: AsyncSession, user_id: str, new_hash: str, *, old_hash: str | None = None
) -> bool:
    """Store `new_hash`; with `old_hash`, only if the stored hash is still that one (a
    rehash on login must not undo a password change that happened meanwhile)."""
    query = update(users).where(users.c.id == user_id).values(password_hash=new_hash)
    if old_hash is not None:
        query = query.where(users.c.password_hash == old_hash)
    return await _changed(session, query) == 1


async def set_role(session: AsyncSession, user_id: str, role: str) -> None:
    await session.execute(update(users).where(users.c.id == user_id).values(role=role))


async def lock_admins(session: AsyncSession) -> list[str]:
    """The ids of the admins, their rows locked for the transaction: of two admins
    demoting each other at once, the second sees the first's change."""
    query = select(users.c.id).where(users.c.role == ADMIN).order_by(users.c.id).with_for_update()
    return list((await session.execute(query)).scalars())


async def delete_account(session: AsyncSession, user_id: str) -> bool:
    """Delete the account with its sessions and refresh tokens (ON DELETE CASCADE)."""
    return await _changed(session, delete(users).where(users.c.id == user_id)) == 1


async def list_accounts(
    session: AsyncSession, limit: int, after: tuple[datetime, str] | None, matching: str = ""
) -> list[Account]:
    """Newest first; `after` is the (created_at, id) of the last account already served.
    With `matching`, only accounts whose email, handle or display name contains it,
    ignoring case (ILIKE on PostgreSQL, lower() on both sides on SQLite: each engine
    folds as it does), its `%` and `_` escaped: plain characters, never wildcards."""
    query = select(users).order_by(users.c.created_at.desc(), users.c.id.desc()).limit(limit)
    if matching:
        query = query.where(
            or_(
                *(
                    column.icontains(matching, autoescape=True)
                    for column in (users.c.email, users.c.handle, users.c.display_name)
                )
            )
        )
    if after is not None:
        created_at, user_id = after
        query = query.where(
            or_(
                users.c.created_at < created_at,
                and_(users.c.created_at == created_at, users.c.id < user_id),
            )
        )
    return [_account(row) for row in await session.execute(query)]


# ---- sessions and refresh tokens -------------------------------------------------------


class RevokeReason:
    LOGOUT = "logout"
    REUSE = "reuse"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    REVOKED = "revoked"  # RevokeSession


@dataclass(frozen=True)
class Client:
    """Who made a login or refresh, as ListSessions shows it."""

    user_agent: str = ""
    address: str = ""


@dataclass(frozen=True)
class LiveSession:
    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str
    client_address: str


async def create_session(
    session: AsyncSession,
    session_id: str,
    user_id: str,
    now: datetime,
    expires_at: datetime,
    client: Client,
) -> None:
    await session.execute(
        insert(sessions).values(
            id=session_id,
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
            last_used_at=now,
            user_agent=client.user_agent[:300],
            client_address=client.address[:100],
        )
    )


async def touch_session(
    session: AsyncSession, session_id: str, now: datetime, client: Client
) -> None:
    """Record a refresh: when, and from which client."""
    await session.execute(
        update(sessions)
        .where(sessions.c.id == session_id)
        .values(
            last_used_at=now,
            user_agent=client.user_agent[:300],
            client_address=client.address[:100],
        )
    )


async def live_sessions(session: AsyncSession, user_id: str, now: datetime) -> list[LiveSession]:
    """The user's sessions neither revoked nor past their absolute expiry, most
    recently used first."""
    last_used = func.coalesce(sessions.c.last_used_at, sessions.c.created_at)
    rows = await session.execute(
        select(sessions, last_used.label("used_at"))
        .where(
            sessions.c.user_id == user_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
        )
        .order_by(last_used.desc(), sessions.c.id)
    )
    return [
        LiveSession(
            id=row.id,
            created_at=as_utc(row.created_at),
            last_used_at=as_utc(row.used_at),
            user_agent=row.user_agent,
            client_address=row.client_address,
        )
        for row in rows
    ]


async def add_refresh_token(
    session: AsyncSession, digest: str, session_id: str, now: datetime, expires_at: datetime
) -> None:
    await session.execute(
        insert(refresh_tokens).values(
            token_hash=digest, session_id=session_id, issued_at=now, expires_at=expires_at
        )
    )


async def find_refresh_token(session: AsyncSession, digest: str) -> RefreshToken | None:
    row = (
        await session.execute(
            select(
                refresh_tokens.c.session_id,
                refresh_tokens.c.expires_at,
                refresh_tokens.c.spent_at,
                sessions.c.user_id,
                sessions.c.expires_at.label("session_expires_at"),
                sessions.c.revoked_at,
            )
            .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.token_hash == digest)
        )
    ).first()
    if row is None:
        return None
    return RefreshToken(
        session_id=row.session_id,
        user_id=row.user_id,
        spent=row.spent_at is not None,
        expires_at=as_utc(row.expires_at),
        session_expires_at=as_utc(row.session_expires_at),
        session_revoked=row.revoked_at is not None,
    )


async def spend_refresh_token(session: AsyncSession, digest: str, now: datetime) -> bool:
    """Mark the token spent unless it already is. Of two transactions spending the same
    token at once, the second waits for the first's row lock, then finds it spent:
    exactly one gets True."""
    spend = (
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == digest, refresh_tokens.c.spent_at.is_(None))
        .values(spent_at=now)
    )
    return await _changed(session, spend) == 1


async def revoke_session(
    session: AsyncSession,
    session_id: str,
    now: datetime,
    reason: str,
    *,
    user_id: str | None = None,
) -> bool:
    """Revoke the session unless it already is (or, with `user_id`, is not that
    user's or has expired); True when this revoked it."""
    query = update(sessions).where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(sessions.c.user_id == user_id, sessions.c.expires_at > now)
    return await _changed(session, query.values(revoked_at=now, revoked_reason=reason)) == 1


async def revoke_sessions_of(
    session: AsyncSession, user_id: str, now: datetime, reason: str, *, keep: str | None
) -> list[str]:
    """Revoke every live session of the user except `keep`. Returns their ids."""
    query = update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep is not None:
        query = query.where(sessions.c.id != keep)
    revoked = await session.execute(
        query.values(revoked_at=now, revoked_reason=reason).returning(sessions.c.id)
    )
    return list(revoked.scalars())


async def prune_sessions(session: AsyncSession, user_id: str, now: datetime) -> None:
    """Forget the user's sessions past their absolute expiry (their tokens go too)."""
    await session.execute(
        delete(sessions).where(sessions.c.user_id == user_id, sessions.c.expires_at <= now)
    )


async def prune_spent_tokens(session: AsyncSession, session_id: str, before: datetime) -> None:
    """Forget tokens of the family spent before `before`. Presenting one then gives
    INVALID_REFRESH_TOKEN rather than REFRESH_TOKEN_REUSED: the price of a family's
    table rows not growing with every refresh for its whole absolute lifetime."""
    await session.execute(
        delete(refresh_tokens).where(
            refresh_tokens.c.session_id == session_id, refresh_tokens.c.spent_at < before
        )
    )


# ---- signing keys ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredKey:
    kid: str
    status: str  # KeyStatus
    private_key: str
    public_key: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None


class KeyStatus:
    NEXT = "next"
    CURRENT = "current"
    RETIRED = "retired"


def _key(row: Row[Any]) -> StoredKey:
    return StoredKey(
        kid=row.kid,
        status=row.status,
        private_key=row.private_key,
        public_key=row.public_key,
        created_at=as_utc(row.created_at),
        activated_at=None if row.activated_at is None else as_utc(row.activated_at),
        retired_at=None if row.retired_at is None else as_utc(row.retired_at),
    )


# First key of the two-int advisory lock that serialises key rotation (fits an int4).
_KEY_LOCK = zlib.crc32(b"klik.auth.signing_keys") - 2**31


async def lock_signing_keys(session: AsyncSession) -> None:
    """Serialise rotations across replicas for the rest of the transaction (SQLite's
    BEGIN IMMEDIATE already does)."""
    if _is_postgres(session):
        await session.execute(select(func.pg_advisory_xact_lock(_KEY_LOCK)))


async def live_keys(session: AsyncSession) -> dict[str, StoredKey]:
    """The `current` and `next` keys, by status."""
    rows = await session.execute(select(signing_keys).where(signing_keys.c.status != "retired"))
    return {row.status: _key(row) for row in rows}


async def verifying_keys(session: AsyncSession, retired_after: datetime) -> list[StoredKey]:
    """Keys whose tokens may still be live: `next`, `current`, and those retired after
    `retired_after`; newest first."""
    rows = await session.execute(
        select(signing_keys)
        .where(
            or_(
                signing_keys.c.status != KeyStatus.RETIRED,
                signing_keys.c.retired_at > retired_after,
            )
        )
        .order_by(signing_keys.c.created_at.desc())
    )
    return [_key(row) for row in rows]


async def insert_key(
    session: AsyncSession,
    kid: str,
    status: str,
    sealed_private_key: str,
    public_x: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(signing_keys).values(
            kid=kid,
            status=status,
            private_key=sealed_private_key,
            public_key=public_x,
            created_at=now,
            activated_at=now if status == KeyStatus.CURRENT else None,
        )
    )


async def all_keys(session: AsyncSession) -> list[StoredKey]:
    """Every stored signing key, retired ones too (their rows are locked)."""
    rows = await session.execute(
        select(signing_keys).order_by(signing_keys.c.kid).with_for_update()
    )
    return [_key(row) for row in rows]


async def set_private_key(session: AsyncSession, kid: str, sealed: str) -> None:
    await session.execute(
        update(signing_keys).where(signing_keys.c.kid == kid).values(private_key=sealed)
    )


async def retire_key(session: AsyncSession, kid: str, now: datetime) -> None:
    await session.execute(
        update(signing_keys)
        .where(signing_keys.c.kid == kid)
        .values(status=KeyStatus.RETIRED, retired_at=now)
    )


async def activate_key(session: AsyncSession, kid: str, now: datetime) -> None:
    await session.execute(
        update(signing_keys)
        .where(signing_keys.c.kid == kid)
        .values(status=KeyStatus.CURRENT, activated_at=now)
    )


async def prune_retired_keys(session: AsyncSession, before: datetime) -> None:
    """Delete keys retired before `before`: no live token needs them, and a private
    key that no longer exists cannot leak."""
    await session.execute(
        delete(signing_keys).where(
            signing_keys.c.status == KeyStatus.RETIRED, signing_keys.c.retired_at < before
        )
    )


# Single-use tokens mailed to an address (verification, reset); only SHA-256 digests.
email_tokens = Table(
    "email_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("purpose", String(20), nullable=False),  # TokenPurpose
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(254), nullable=False),  # the address it was mailed to
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
)
Index("ix_email_tokens_user_id_purpose", email_tokens.c.user_id, email_tokens.c.purpose)

# Mail to send: written in the transaction of the change that needs it, delivered
# by background.MailSender (each row once; `next_attempt_at` is also its lease).
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("to_address", String(254), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp, nullable=True),
    Column("last_error", String(500), nullable=True),
)
Index(
    "ix_mail_outbox_sent_at_next_attempt_at", mail_outbox.c.sent_at, mail_outbox.c.next_attempt_at
)


# ---- login failures --------------------------------------------------------------------


async def failures(session: AsyncSession, keys: Sequence[str]) -> dict[str, Failures]:
    rows = await session.execute(select(login_failures).where(login_failures.c.key.in_(list(keys))))
    return {
        row.key: Failures(row.failures, as_utc(row.last_failure_at))
        for row in rows
        if row.failures > 0
    }


async def lock_failures(session: AsyncSession, key: str, now: datetime) -> Failures | None:
    """The key's count, its row locked for this transaction (created empty if need be),
    so concurrent failures each count."""
    await session.execute(
        dialect_insert(session, login_failures)
        .values(key=key, failures=0, last_failure_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = (
        await session.execute(
            select(login_failures).where(login_failures.c.key == key).with_for_update()
        )
    ).one()
    return Failures(row.failures, as_utc(row.last_failure_at)) if row.failures > 0 else None


async def set_failures(session: AsyncSession, key: str, count: Failures) -> None:
    await session.execute(
        update(login_failures)
        .where(login_failures.c.key == key)
        .values(failures=count.count, last_failure_at=count.last_at)
    )


async def clear_failures(session: AsyncSession, key: str) -> None:
    await session.execute(delete(login_failures).where(login_failures.c.key == key))


async def prune_failures(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(login_failures).where(login_failures.c.last_failure_at < before))


# ---- email tokens ----------------------------------------------------------------------


class TokenPurpose:
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"  # `email` is the new address, not the account's


@dataclass(frozen=True)
class EmailToken:
    purpose: str
    user_id: str
    email: str
    created_at: datetime
    expires_at: datetime
    used: bool


async def add_email_token(
    session: AsyncSession,
    digest: str,
    purpose: str,
    user_id: str,
    email: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await session.execute(
        insert(email_tokens).values(
            token_hash=digest,
            purpose=purpose,
            user_id=user_id,
            email=email,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def email_token(session: AsyncSession, digest: str, purpose: str) -> EmailToken | None:
    """The token, its row locked for the transaction (two uses at once: one waits)."""
    row = (
        await session.execute(
            select(email_tokens)
            .where(email_tokens.c.token_hash == digest, email_tokens.c.purpose == purpose)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    return EmailToken(
        purpose=row.purpose,
        user_id=row.user_id,
        email=row.email,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        used=row.used_at is not None,
    )


async def use_email_token(session: AsyncSession, digest: str, now: datetime) -> bool:
    """Mark the token used unless it already is; exactly one use gets True."""
    use = (
        update(email_tokens)
        .where(email_tokens.c.token_hash == digest, email_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )
    return await _changed(session, use) == 1


async def use_email_tokens_of(
    session: AsyncSession, user_id: str, purpose: str, now: datetime
) -> None:
    """Mark every unused `purpose` token of the user used (one reset spends all)."""
    await session.execute(
        update(email_tokens)
        .where(
            email_tokens.c.user_id == user_id,
            email_tokens.c.purpose == purpose,
            email_tokens.c.used_at.is_(None),
        )
        .values(used_at=now)
    )


async def latest_email_token_at(
    session: AsyncSession, user_id: str, purpose: str
) -> datetime | None:
    """When the newest `purpose` token of the user was issued."""
    latest = await session.scalar(
        select(func.max(email_tokens.c.created_at)).where(
            email_tokens.c.user_id == user_id, email_tokens.c.purpose == purpose
        )
    )
    return None if latest is None else as_utc(latest)


async def prune_email_tokens(session: AsyncSession, user_id: str, now: datetime) -> None:
    """Forget the user's expired tokens."""
    await session.execute(
        delete(email_tokens).where(
            email_tokens.c.user_id == user_id, email_tokens.c.expires_at <= now
        )
    )


async def mark_email_verified(session: AsyncSession, user_id: str, email: str) -> bool:
    """Mark the account's address verified if it still is `email` and was not yet;
    True when this changed it."""
    query = (
        update(users)
        .where(users.c.id == user_id, users.c.email == email, users.c.email_verified.is_(False))
        .values(email_verified=True)
    )
    return await _changed(session, query) == 1


# ---- mail outbox -----------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMail:
    id: str
    to_address: str
    subject: str
    text: str
    html: str
    attempts: int


async def add_mail(
    session: AsyncSession, mail_id: str, to: str, subject: str, text: str, html: str, now: datetime
) -> None:
    await session.execute(
        insert(mail_outbox).values(
            id=mail_id,
            to_address=to,
            subject=subject,
            text=text,
            html=html,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )


async def lease_due_mail(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[OutgoingMail]:
    """Up to `limit` unsent mails due by `now`, leased until `lease_until` (no other
    replica takes them meanwhile; rows another replica is leasing are skipped)."""
    rows = (
        await session.execute(
            select(mail_outbox)
            .where(mail_outbox.c.sent_at.is_(None), mail_outbox.c.next_attempt_at <= now)
            .order_by(mail_outbox.c.next_attempt_at, mail_outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if rows:
        await session.execute(
            update(mail_outbox)
            .where(mail_outbox.c.id.in_([row.id for row in rows]))
            .values(next_attempt_at=lease_until)
        )
    return [
        OutgoingMail(row.id, row.to_address, row.subject, row.text, row.html, row.attempts)
        for row in rows
    ]


async def mail_sent(session: AsyncSession, mail_id: str, now: datetime) -> None:
    await session.execute(
        update(mail_outbox).where(mail_outbox.c.id == mail_id).values(sent_at=now, last_error=None)
    )


async def mail_failed(
    session: AsyncSession, mail_id: str, attempts: int, retry_at: datetime, error: str
) -> None:
    await session.execute(
        update(mail_outbox)
        .where(mail_outbox.c.id == mail_id)
        .values(attempts=attempts, next_attempt_at=retry_at, last_error=error[:500])
    )


async def prune_sent_mail(session: AsyncSession, before: datetime) -> int:
    """Forget mail sent before `before` (its links are long expired)."""
    return await _changed(
        session,
        delete(mail_outbox).where(
            mail_outbox.c.sent_at.is_not(None), mail_outbox.c.sent_at < before
        ),
    )


# ---- two-factor (TOTP) -----------------------------------------------------------------

# One TOTP factor per account. `secret` is sealed with the KEK (kek.py); the factor is
# active once `confirmed_at` is set. `last_step` is the newest 30-second time step a
# code was accepted for: a code of that step or an earlier one is refused (no replay).
totp_factors = Table(
    "totp_factors",
    metadata,
    Column(
        "user_id",
        String(36),
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("secret", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("confirmed_at", Timestamp, nullable=True),
    Column("last_step", Integer, nullable=True),
)

# Single-use recovery codes (80 random bits each), SHA-256 digests only.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("used_at", Timestamp, nullable=True),
)
Index("ix_recovery_codes_user_id", recovery_codes.c.user_id)

# The second step of a two-factor login: a short-lived single-use challenge (digest).
login_challenges = Table(
    "login_challenges",
    metadata,
    Column("challenge_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
)
Index("ix_login_challenges_user_id", login_challenges.c.user_id)


@dataclass(frozen=True)
class TotpFactor:
    user_id: str
    secret: str  # sealed
    active: bool
    last_step: int | None


def _factor(row: Row[Any]) -> TotpFactor:
    return TotpFactor(row.user_id, row.secret, row.confirmed_at is not None, row.last_step)


async def totp_factor(
    session: AsyncSession, user_id: str, *, for_update: bool = False
) -> TotpFactor | None:
    query = select(totp_factors).where(totp_factors.c.user_id == user_id)
    row = (await session.execute(query.with_for_update() if for_update else query)).first()
    return None if row is None else _factor(row)


async def two_factor_active(session: AsyncSession, user_id: str) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(totp_factors)
        .where(totp_factors.c.user_id == user_id, totp_factors.c.confirmed_at.is_not(None))
    )
    return bool(found)


async def put_pending_factor(
    session: AsyncSession, user_id: str, sealed_secret: str, now: datetime
) -> None:
    """Replace the user's factor with a new, not yet confirmed one."""
    await session.execute(delete(totp_factors).where(totp_factors.c.user_id == user_id))
    await session.execute(
        insert(totp_factors).values(user_id=user_id, secret=sealed_secret, created_at=now)
    )


async def use_totp_step(session: AsyncSession, user_id: str, step: int) -> bool:
    """Record that a code of `step` was accepted, unless one of that step or a later
    one already was; exactly one of two concurrent uses of a code gets True."""
    query = (
        update(totp_factors)
        .where(
            totp_factors.c.user_id == user_id,
            or_(totp_factors.c.last_step.is_(None), totp_factors.c.last_step < step),
        )
        .values(last_step=step)
    )
    return await _changed(session, query) == 1


async def confirm_factor(session: AsyncSession, user_id: str, now: datetime) -> None:
    await session.execute(
        update(totp_factors).where(totp_factors.c.user_id == user_id).values(confirmed_at=now)
    )


async def delete_factor(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(totp_factors).where(totp_factors.c.user_id == user_id))
    await session.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))


async def all_factor_secrets(session: AsyncSession) -> list[tuple[str, str]]:
    """(user_id, sealed secret) of every factor, rows locked (re-sealing)."""
    rows = await session.execute(
        select(totp_factors.c.user_id, totp_factors.c.secret)
        .order_by(totp_factors.c.user_id)
        .with_for_update()
    )
    return [(row.user_id, row.secret) for row in rows]


async def set_factor_secret(session: AsyncSession, user_id: str, sealed: str) -> None:
    await session.execute(
        update(totp_factors).where(totp_factors.c.user_id == user_id).values(secret=sealed)
    )


async def replace_recovery_codes(
    session: AsyncSession, user_id: str, digests: Sequence[str]
) -> None:
    await session.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    for code_hash in digests:
        await session.execute(insert(recovery_codes).values(code_hash=code_hash, user_id=user_id))


async def use_recovery_code(
    session: AsyncSession, user_id: str, code_hash: str, now: datetime
) -> bool:
    """Spend one of the user's unused recovery codes; exactly one use gets True."""
    query = (
        update(recovery_codes)
        .where(
            recovery_codes.c.user_id == user_id,
            recovery_codes.c.code_hash == code_hash,
            recovery_codes.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return await _changed(session, query) == 1


async def add_login_challenge(
    session: AsyncSession, digest: str, user_id: str, now: datetime, expires_at: datetime
) -> None:
    await session.execute(
        delete(login_challenges).where(
            login_challenges.c.user_id == user_id, login_challenges.c.expires_at <= now
        )
    )
    await session.execute(
        insert(login_challenges).values(
            challenge_hash=digest, user_id=user_id, created_at=now, expires_at=expires_at
        )
    )


async def live_login_challenge(session: AsyncSession, digest: str, now: datetime) -> str | None:
    """The user id of an unused, unexpired challenge (row locked), else None."""
    row = (
        await session.execute(
            select(login_challenges.c.user_id)
            .where(
                login_challenges.c.challenge_hash == digest,
                login_challenges.c.used_at.is_(None),
                login_challenges.c.expires_at > now,
            )
            .with_for_update()
        )
    ).first()
    return None if row is None else str(row.user_id)


async def use_login_challenge(session: AsyncSession, digest: str, now: datetime) -> bool:
    query = (
        update(login_challenges)
        .where(login_challenges.c.challenge_hash == digest, login_challenges.c.used_at.is_(None))
        .values(used_at=now)
    )
    return await _changed(session, query) == 1


# ---- change of email -------------------------------------------------------------------


async def set_email(session: AsyncSession, user_id: str, email: str) -> bool:
    """Give the account `email`, verified. Raises sqlalchemy's IntegrityError when
    another account has it."""
    query = update(users).where(users.c.id == user_id).values(email=email, email_verified=True)
    return await _changed(session, query) == 1


# ---- plans (wallet.plan_changed) -------------------------------------------------------

# The newest `wallet.plan_changed` applied to each account: an older one (by the
# wallet's per-user version) delivered later changes nothing.
plan_states = Table(
    "plan_states",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("premium", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


async def advance_plan_state(
    session: AsyncSession, user_id: str, version: int, premium: bool, now: datetime
) -> bool:
    """Record the account's plan state at `version` unless a version at least as new
    is recorded; whether it was recorded (the event is the newest seen)."""
    insert_ = dialect_insert(session, plan_states).values(
        user_id=user_id, version=version, premium=premium, updated_at=now
    )
    recorded = await session.scalar(
        insert_.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"version": version, "premium": premium, "updated_at": now},
            where=plan_states.c.version < version,
        ).returning(plan_states.c.user_id)
    )
    return recorded is not None


# ---- account summaries -----------------------------------------------------------------

# One row per account and UTC day on which it signed in or refreshed a session: what
# "active users per day" counts (sessions keep only their last use, and spent refresh
# tokens are pruned). Deleting the account deletes its rows.
user_activity = Table(
    "user_activity",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD, UTC
    PrimaryKeyConstraint("user_id", "day", name="pk_user_activity"),
)
Index("ix_user_activity_day", user_activity.c.day)


async def record_activity(session: AsyncSession, user_id: str, now: datetime) -> None:
    """Mark the account active on `now`'s UTC day (once a day: later calls change nothing)."""
    day = now.astimezone(UTC).date().isoformat()
    await session.execute(
        dialect_insert(session, user_activity)
        .values(user_id=user_id, day=day)
        .on_conflict_do_nothing(index_elements=["user_id", "day"])
    )


async def signups_per_day(session: AsyncSession, since: datetime) -> dict[str, int]:
    """UTC day → accounts created that day, since `since`."""
    day = daily.utc_day(users.c.created_at)
    rows = await session.execute(
        select(day, func.count()).where(users.c.created_at >= since).group_by(day)
    )
    return {row[0]: int(row[1]) for row in rows}


async def active_per_day(session: AsyncSession, since: datetime) -> dict[str, int]:
    """UTC day → distinct accounts active that day, since `since`."""
    first = since.astimezone(UTC).date().isoformat()
    rows = await session.execute(
        select(user_activity.c.day, func.count())
        .where(user_activity.c.day >= first)
        .group_by(user_activity.c.day)
    )
    return {row[0]: int(row[1]) for row in rows}
