"""The wallet service's tables (its own database only) and the queries on them. The
kit's outbox and processed-events tables are added by the kit's own migration branch.

Locking protocol (PostgreSQL; on SQLite every transaction holds the database write
lock from BEGIN IMMEDIATE, so none of this is needed there but all of it is
harmless). Every transaction that changes money takes its locks in this order:

  1. its idempotency key row (`claim_key`, an INSERT the unique key makes copies
     of the same request queue on);
  2. wallet rows (`lock_wallet`), several in ascending user_id order;
  3. hold rows (`lock_hold`) of a wallet it already locked.

Locks are only ever taken in that order, so no two transactions can wait on each
other in a cycle: no deadlocks. Every change to a hold holds its wallet's lock, so
the wallet lock alone serialises everything that touches one wallet. So does
every change to a wallet's lots and to what a hold reserved of them (`lots`,
`hold_lots`): they are only read and written under the wallet's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kit import daily
from kit.db import as_utc, dialect_insert
from services.wallet.domain import (
    Draw,
    Entry,
    Hold,
    HoldStatus,
    Lot,
    Payment,
    Subscription,
    Wallet,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_SEQ = BigInteger().with_variant(Integer, "sqlite")

wallets = Table(
    "wallets",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("held", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("debt", BigInteger, nullable=False, server_default="0"),
    Column("low_balance", BigInteger, nullable=False, server_default="0"),
    Column("low_balance_alerted", Boolean, nullable=False, server_default=false()),
    # The database refuses what the domain never writes: the last line of defence.
    CheckConstraint("held >= 0", name="ck_wallets_held_not_negative"),
    CheckConstraint("balance - held >= 0", name="ck_wallets_available_not_negative"),
    CheckConstraint("debt >= 0", name="ck_wallets_debt_not_negative"),
    CheckConstraint("debt = 0 OR balance = held", name="ck_wallets_debt_leaves_nothing"),
)

ledger = Table(
    "ledger",
    metadata,
    # Write order; per wallet it is also commit order (rows are written under the
    # wallet's lock), which is what "newest first" pages by.
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("user_id", String(64), ForeignKey("wallets.user_id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("reference", String(200), nullable=False),
    Column("description", Text, nullable=False),
    # Ties the rows of one operation together: both sides of a transfer.
    Column("correlation_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # What the row changed of the wallet's debt, and the debt after it.
    Column("debt_change", BigInteger, nullable=False, server_default="0"),
    Column("debt_after", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("amount <> 0 OR debt_change <> 0", name="ck_ledger_moves_something"),
    CheckConstraint("balance_after >= 0", name="ck_ledger_balance_after_not_negative"),
    CheckConstraint("debt_after >= 0", name="ck_ledger_debt_after_not_negative"),
    Index("ix_ledger_user_seq", "user_id", "seq"),
)
_REFUND = ledger.c.kind == "refund"
# A charge is refunded once: one `refund` row per charge row it names.
Index(
    "ux_ledger_refund_of_charge",
    ledger.c.reference,
    unique=True,
    postgresql_where=_REFUND,
    sqlite_where=_REFUND,
)

holds = Table(
    "holds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(64), ForeignKey("wallets.user_id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),
    Column("captured_amount", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("reference", String(200), nullable=False),
    Column("description", Text, nullable=False),
    CheckConstraint("amount > 0", name="ck_holds_amount_positive"),
    CheckConstraint(
        "captured_amount >= 0 AND captured_amount <= amount", name="ck_holds_captured_in_range"
    ),
    CheckConstraint(
        "status IN ('open', 'captured', 'released', 'expired')", name="ck_holds_status"
    ),
)
# The credits on a wallet's balance, lot by lot: what each credit row brought, what
# is left of it, what open holds reserved of it, and when the rest expires.
lots = Table(
    "lots",
    metadata,
    # Creation order: "oldest first" among lots that expire together (or never).
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("user_id", String(64), ForeignKey("wallets.user_id"), nullable=False),
    Column("bucket", String(10), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    # The credit row's reference (a purchase's payment id) and the row itself.
    Column("reference", String(200), nullable=False),
    Column("entry_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount > 0", name="ck_lots_amount_positive"),
    CheckConstraint(
        "reserved >= 0 AND reserved <= remaining AND remaining <= amount",
        name="ck_lots_in_range",
    ),
    CheckConstraint("bucket IN ('purchase', 'allowance', 'grant', 'bonus')", name="ck_lots_bucket"),
)
_LIVE = lots.c.remaining > 0
_DUE = (lots.c.remaining > lots.c.reserved) & lots.c.expires_at.is_not(None)
# A wallet's lots with credits left, and the expiry sweeper's query: both stay as
# small as the credits that are left.
Index("ix_lots_live_user", lots.c.user_id, postgresql_where=_LIVE, sqlite_where=_LIVE)
Index("ix_lots_due", lots.c.expires_at, postgresql_where=_DUE, sqlite_where=_DUE)

# What each hold reserved of each lot, and what its capture consumed of it.
hold_lots = Table(
    "hold_lots",
    metadata,
    Column("hold_id", String(36), ForeignKey("holds.id"), nullable=False),
    Column("lot_id", String(36), ForeignKey("lots.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("captured", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("hold_id", "lot_id", name="pk_hold_lots"),
    CheckConstraint("amount > 0", name="ck_hold_lots_amount_positive"),
    CheckConstraint("captured >= 0 AND captured <= amount", name="ck_hold_lots_captured"),
)

stripe_customers = Table(
    "stripe_customers",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("customer_id", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

payments = Table(
    "payments",
    metadata,
    # The Checkout Session id: one payment per session.
    Column("id", String(255), primary_key=True),
    Column("user_id", String(64), ForeignKey("wallets.user_id"), nullable=False),
    Column("pack_id", String(64), nullable=False),
    Column("credits", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(10), nullable=False),
    Column("payment_intent", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=True),
    # Stripe's running totals for the charge (minor units), its dispute, its
    # receipt, and the credits taken back for them so far.
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("disputed_amount", BigInteger, nullable=False, server_default="0"),
    Column("dispute_id", String(255), nullable=False, server_default=""),
    Column("receipt_url", Text, nullable=False, server_default=""),
    Column("credits_reversed", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("credits > 0", name="ck_payments_credits_positive"),
    CheckConstraint("status IN ('open', 'paid', 'expired')", name="ck_payments_status"),
    CheckConstraint(
        "credits_reversed >= 0 AND credits_reversed <= credits",
        name="ck_payments_reversed_in_range",
    ),
    Index("ix_payments_user_created", "user_id", "created_at"),
    Index("ix_payments_payment_intent", "payment_intent"),
)

# Refunds admins asked Stripe for: who, why, how much (the audit of RefundPayment).
payment_refunds = Table(
    "payment_refunds",
    metadata,
    # Stripe's refund id.
    Column("id", String(255), primary_key=True),
    Column("payment_id", String(255), ForeignKey("payments.id"), nullable=False),
    Column("admin_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_payment_refunds_payment", "payment_id"),
)

# Every Stripe event handled, by id: a redelivered event finds its row and does nothing.
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Subscriptions to plans, as Stripe's webhooks last reported them.
subscriptions = Table(
    "subscriptions",
    metadata,
    # Stripe's subscription id.
    Column("id", String(255), primary_key=True),
    Column("user_id", String(64), ForeignKey("wallets.user_id"), nullable=False),
    Column("plan_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("current_period_start", DateTime(timezone=True), nullable=True),
    Column("current_period_end", DateTime(timezone=True), nullable=True),
    Column("cancel_at_period_end", Boolean, nullable=False, server_default=false()),
    # `created` (unix seconds) of the newest subscription event applied: an older
    # one delivered late changes nothing.
    Column("stripe_updated", BigInteger, nullable=False, server_default="0"),
    # Bumped on every change; `wallet.plan_changed` carries the user's newest.
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_subscriptions_user_updated", "user_id", "updated_at"),
)

# The paid invoices whose allowance was granted: one grant per invoice.
subscription_invoices = Table(
    "subscription_invoices",
    metadata,
    # Stripe's invoice id.
    Column("id", String(255), primary_key=True),
    Column("subscription_id", String(255), ForeignKey("subscriptions.id"), nullable=False),
    Column("credits", BigInteger, nullable=False),
    Column("period_end", DateTime(timezone=True), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

_OPEN = holds.c.status == HoldStatus.OPEN.value
# The sweeper's query and the close of a wallet: open holds only, so both indexes stay
# as small as the number of open holds.
Index("ix_holds_open_expiry", holds.c.expires_at, postgresql_where=_OPEN, sqlite_where=_OPEN)
Index("ix_holds_open_user", holds.c.user_id, postgresql_where=_OPEN, sqlite_where=_OPEN)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # Who used the key: a user id, or "service:<name>"; keys of different callers
    # and of different operations never collide.
    Column("scope", String(100), nullable=False),
    Column("operation", String(40), nullable=False),
    Column("key", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # The first result (JSON), written in the transaction that claimed the key.
    Column("response", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("scope", "operation", "key", name="pk_idempotency_keys"),
    Index("ix_idempotency_keys_created_at", "created_at"),
)


# The statements of the hot paths (holds, captures, transfers) are built once, with
# bind parameters, rather than per call: building a SQLAlchemy construct and its
# cache key costs more Python time than the round trip it describes.
_LOCK_WALLET = (
    select(wallets).where(wallets.c.user_id == bindparam("user_id")).with_for_update(key_share=True)
)
_SAVE_WALLET = (
    update(wallets)
    .where(wallets.c.user_id == bindparam("w_user_id"))
    .values(
        balance=bindparam("balance"),
        held=bindparam("held"),
        updated_at=bindparam("updated_at"),
        closed_at=bindparam("closed_at"),
        debt=bindparam("debt"),
        low_balance=bindparam("low_balance"),
        low_balance_alerted=bindparam("low_balance_alerted"),
    )
)
_ADD_ENTRY = insert(ledger)
_ADD_HOLD = insert(holds)
_GET_HOLD = select(holds).where(holds.c.id == bindparam("id"))
_LOCK_HOLD = _GET_HOLD.with_for_update(key_share=True)
_SAVE_HOLD = (
    update(holds)
    .where(holds.c.id == bindparam("h_id"))
    .values(
        status=bindparam("status"),
        captured_amount=bindparam("captured_amount"),
        resolved_at=bindparam("resolved_at"),
    )
)
_KEY = (
    (idempotency_keys.c.scope == bindparam("k_scope"))
    & (idempotency_keys.c.operation == bindparam("k_operation"))
    & (idempotency_keys.c.key == bindparam("k_key"))
)
_CLAIM_KEY = {
    dialect: dialect_insert(dialect, idempotency_keys)
    .on_conflict_do_nothing(index_elements=["scope", "operation", "key"])
    .returning(idempotency_keys.c.key)
    for dialect in ("postgresql", "sqlite")
}
_READ_KEY = select(idempotency_keys.c.fingerprint, idempotency_keys.c.response).where(_KEY)
_SAVE_RESPONSE = update(idempotency_keys).where(_KEY).values(response=bindparam("response"))
_FORGET_KEY = delete(idempotency_keys).where(_KEY)


# ---- wallets -------------------------------------------------------------------------


def _wallet(row: Row[Any]) -> Wallet:
    return Wallet(
        user_id=row.user_id,
        balance=row.balance,
        held=row.held,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        closed_at=None if row.closed_at is None else as_utc(row.closed_at),
        debt=row.debt,
        low_balance=row.low_balance,
        low_balance_alerted=bool(row.low_balance_alerted),
    )


async def get_wallet(session: AsyncSession, user_id: str) -> Wallet | None:
    row = (await session.execute(select(wallets).where(wallets.c.user_id == user_id))).first()
    return None if row is None else _wallet(row)


async def lock_wallet(session: AsyncSession, user_id: str) -> Wallet | None:
    """Read a wallet and lock its row until the transaction ends. FOR NO KEY UPDATE:
    the strongest lock we need (we never change the key), which still lets other
    transactions insert rows that reference it."""
    row = (await session.execute(_LOCK_WALLET, {"user_id": user_id})).first()
    return None if row is None else _wallet(row)


async def lock_wallets(session: AsyncSession, user_ids: Sequence[str]) -> dict[str, Wallet | None]:
    """Lock several wallets one by one in ascending user_id order: every transaction
    that locks more than one wallet does it in this order, so none can deadlock."""
    return {user_id: await lock_wallet(session, user_id) for user_id in sorted(set(user_ids))}


async def create_wallet(session: AsyncSession, wallet: Wallet) -> bool:
    """Insert the wallet unless one exists for the user. Returns whether it did; a
    racing insert waits for the other transaction and then inserts nothing."""
    created = await session.scalar(
        dialect_insert(session, wallets)
        .values(
            user_id=wallet.user_id,
            balance=wallet.balance,
            held=wallet.held,
            created_at=wallet.created_at,
            updated_at=wallet.updated_at,
            closed_at=wallet.closed_at,
            debt=wallet.debt,
            low_balance=wallet.low_balance,
            low_balance_alerted=wallet.low_balance_alerted,
        )
        .on_conflict_do_nothing(index_elements=["user_id"])
        .returning(wallets.c.user_id)
    )
    return created is not None


async def save_wallet(session: AsyncSession, wallet: Wallet) -> None:
    await session.execute(
        _SAVE_WALLET,
        {
            "w_user_id": wallet.user_id,
            "balance": wallet.balance,
            "held": wallet.held,
            "updated_at": wallet.updated_at,
            "closed_at": wallet.closed_at,
            "debt": wallet.debt,
            "low_balance": wallet.low_balance,
            "low_balance_alerted": wallet.low_balance_alerted,
        },
    )


# ---- ledger --------------------------------------------------------------------------


def _entry(row: Row[Any]) -> Entry:
    return Entry(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        amount=row.amount,
        balance_after=row.balance_after,
        reference=row.reference,
        description=row.description,
        created_at=as_utc(row.created_at),
        debt_change=row.debt_change,
        debt_after=row.debt_after,
    )


async def add_entry(session: AsyncSession, entry: Entry, correlation_id: str) -> None:
    await session.execute(
        _ADD_ENTRY,
        {
            "id": entry.id,
            "user_id": entry.user_id,
            "kind": str(entry.kind),
            "amount": entry.amount,
            "balance_after": entry.balance_after,
            "reference": entry.reference,
            "description": entry.description,
            "correlation_id": correlation_id,
            "created_at": entry.created_at,
            "debt_change": entry.debt_change,
            "debt_after": entry.debt_after,
        },
    )


@dataclass(frozen=True)
class EntryPage:
    entries: list[Entry]
    # The `seq` to continue below, or None on the last page.
    next_before: int | None


async def list_entries(
    session: AsyncSession, user_id: str, *, before: int | None, limit: int
) -> EntryPage:
    """A wallet's rows newest first, those with seq < `before` when given."""
    query = select(ledger).where(ledger.c.user_id == user_id)
    if before is not None:
        query = query.where(ledger.c.seq < before)
    rows = (await session.execute(query.order_by(ledger.c.seq.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return EntryPage([_entry(row) for row in rows], rows[-1].seq if more else None)


# ---- holds ---------------------------------------------------------------------------


def _hold(row: Row[Any]) -> Hold:
    return Hold(
        id=row.id,
        user_id=row.user_id,
        amount=row.amount,
        status=row.status,
        captured_amount=row.captured_amount,
        expires_at=as_utc(row.expires_at),
        created_at=as_utc(row.created_at),
        reference=row.reference,
        description=row.description,
        resolved_at=None if row.resolved_at is None else as_utc(row.resolved_at),
    )


async def get_hold(session: AsyncSession, hold_id: str) -> Hold | None:
    row = (await session.execute(_GET_HOLD, {"id": hold_id})).first()
    return None if row is None else _hold(row)


async def lock_hold(session: AsyncSession, hold_id: str) -> Hold | None:
    """Re-read a hold under its wallet's lock (which the caller holds) and lock it too."""
    row = (await session.execute(_LOCK_HOLD, {"id": hold_id})).first()
    return None if row is None else _hold(row)


async def add_hold(session: AsyncSession, hold: Hold) -> None:
    await session.execute(
        _ADD_HOLD,
        {
            "id": hold.id,
            "user_id": hold.user_id,
            "amount": hold.amount,
            "status": str(hold.status),
            "captured_amount": hold.captured_amount,
            "expires_at": hold.expires_at,
            "created_at": hold.created_at,
            "resolved_at": hold.resolved_at,
            "reference": hold.reference,
            "description": hold.description,
        },
    )


async def save_hold(session: AsyncSession, hold: Hold) -> None:
    await session.execute(
        _SAVE_HOLD,
        {
            "h_id": hold.id,
            "status": str(hold.status),
            "captured_amount": hold.captured_amount,
            "resolved_at": hold.resolved_at,
        },
    )


async def lock_open_holds(
    session: AsyncSession, user_id: str, *, due_by: datetime | None = None
) -> list[Hold]:
    """The wallet's open holds (only those expiring by `due_by` when given), locked;
    the caller holds the wallet's lock."""
    query = select(holds).where(holds.c.user_id == user_id, _OPEN)
    if due_by is not None:
        query = query.where(holds.c.expires_at <= due_by)
    rows = (await session.execute(query.order_by(holds.c.id).with_for_update(key_share=True))).all()
    return [_hold(row) for row in rows]


async def wallets_with_due_holds(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Owners of open holds past their expiry (read without locks: the sweeper locks
    each wallet and looks again)."""
    rows = await session.execute(
        select(holds.c.user_id)
        .where(_OPEN, holds.c.expires_at <= now)
        .group_by(holds.c.user_id)
        .order_by(func.min(holds.c.expires_at))
        .limit(limit)
    )
    return [row.user_id for row in rows]


# ---- lots ---------------------------------------------------------------------------


def _lot(row: Row[Any]) -> Lot:
    return Lot(
        id=row.id,
        user_id=row.user_id,
        bucket=row.bucket,
        amount=row.amount,
        remaining=row.remaining,
        reserved=row.reserved,
        expires_at=None if row.expires_at is None else as_utc(row.expires_at),
        reference=row.reference,
        created_at=as_utc(row.created_at),
        seq=row.seq,
    )


_LIVE_LOTS = select(lots).where(lots.c.user_id == bindparam("user_id"), _LIVE).order_by(lots.c.seq)
_SAVE_LOT = (
    update(lots)
    .where(lots.c.id == bindparam("l_id"))
    .values(remaining=bindparam("remaining"), reserved=bindparam("reserved"))
)


async def add_lot(session: AsyncSession, lot: Lot, entry_id: str) -> None:
    await session.execute(
        insert(lots).values(
            id=lot.id,
            user_id=lot.user_id,
            bucket=str(lot.bucket),
            amount=lot.amount,
            remaining=lot.remaining,
            reserved=lot.reserved,
            expires_at=lot.expires_at,
            reference=lot.reference,
            entry_id=entry_id,
            created_at=lot.created_at,
        )
    )


async def live_lots(session: AsyncSession, user_id: str) -> list[Lot]:
    """A wallet's lots with credits left (the caller holds the wallet's lock, or
    only reads)."""
    return [_lot(row) for row in await session.execute(_LIVE_LOTS, {"user_id": user_id})]


async def save_lots(session: AsyncSession, before: Sequence[Lot], after: Sequence[Lot]) -> None:
    """Write the lots of `after` that differ from `before`."""
    seen = {lot.id: lot for lot in before}
    changed = [
        {"l_id": lot.id, "remaining": lot.remaining, "reserved": lot.reserved}
        for lot in after
        if seen.get(lot.id) != lot
    ]
    if changed:
        await session.execute(_SAVE_LOT, changed)


async def add_hold_lots(session: AsyncSession, hold_id: str, draws: Sequence[Draw]) -> None:
    await session.execute(
        insert(hold_lots),
        [{"hold_id": hold_id, "lot_id": d.lot_id, "amount": d.amount} for d in draws],
    )


async def hold_draws(session: AsyncSession, hold_id: str) -> list[Draw]:
    """What a hold reserved, lot by lot."""
    rows = await session.execute(
        select(hold_lots.c.lot_id, hold_lots.c.amount).where(hold_lots.c.hold_id == hold_id)
    )
    return [Draw(row.lot_id, row.amount) for row in rows]


async def save_captures(session: AsyncSession, hold_id: str, consumed: Sequence[Draw]) -> None:
    if consumed:
        await session.execute(
            update(hold_lots)
            .where(hold_lots.c.hold_id == hold_id, hold_lots.c.lot_id == bindparam("c_lot"))
            .values(captured=bindparam("c_amount")),
            [{"c_lot": d.lot_id, "c_amount": d.amount} for d in consumed],
        )


async def captured_buckets(session: AsyncSession, hold_id: str) -> set[str]:
    """The buckets of the lots a captured hold's charge consumed."""
    rows = await session.execute(
        select(lots.c.bucket)
        .join(hold_lots, hold_lots.c.lot_id == lots.c.id)
        .where(hold_lots.c.hold_id == hold_id, hold_lots.c.captured > 0)
    )
    return {row.bucket for row in rows}


async def wallets_with_due_lots(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Owners of lots past their expiry with an unreserved remainder (read without
    locks: the sweeper locks each wallet and looks again)."""
    rows = await session.execute(
        select(lots.c.user_id)
        .where(_DUE, lots.c.expires_at <= now)
        .group_by(lots.c.user_id)
        .order_by(func.min(lots.c.expires_at))
        .limit(limit)
    )
    return [row.user_id for row in rows]


# ---- idempotency keys ----------------------------------------------------------------


def _key_params(scope: str, operation: str, key: str) -> dict[str, str]:
    return {"k_scope": scope, "k_operation": operation, "k_key": key}


@dataclass(frozen=True)
class StoredKey:
    fingerprint: str
    response: str | None


async def claim_key(
    session: AsyncSession,
    scope: str,
    operation: str,
    key: str,
    fingerprint: str,
    now: datetime,
) -> StoredKey | None:
    """Claim an idempotency key for this transaction: None when claimed (go ahead and
    make the effect), else the key as an earlier request left it.

    The INSERT is the first write of every idempotent transaction. On PostgreSQL a
    copy of the same request arriving while the first is in flight blocks on the
    unique key until the first transaction ends: if it committed, the copy finds its
    row (and its response); if it rolled back, the copy claims the key itself. So
    however many copies race, one effect is made."""
    key_of = _key_params(scope, operation, key)
    claim = _CLAIM_KEY[session.get_bind().dialect.name]
    values = {"scope": scope, "operation": operation, "key": key, "fingerprint": fingerprint}
    for _ in range(3):
        claimed = await session.scalar(claim, {**values, "response": None, "created_at": now})
        if claimed is not None:
            return None
        row = (await session.execute(_READ_KEY, key_of)).first()
        if row is not None:
            return StoredKey(row.fingerprint, row.response)
        # Pruned between the two statements: claim it again.
    raise RuntimeError(f"could not claim idempotency key {operation}/{key}")


async def read_key(session: AsyncSession, scope: str, operation: str, key: str) -> StoredKey | None:
    """The key as an earlier request left it, without claiming it."""
    row = (await session.execute(_READ_KEY, _key_params(scope, operation, key))).first()
    return None if row is None else StoredKey(row.fingerprint, row.response)


async def save_response(
    session: AsyncSession, scope: str, operation: str, key: str, response: str
) -> None:
    await session.execute(
        _SAVE_RESPONSE, {**_key_params(scope, operation, key), "response": response}
    )


async def forget_key(session: AsyncSession, scope: str, operation: str, key: str) -> None:
    await session.execute(_FORGET_KEY, _key_params(scope, operation, key))


async def prune_keys(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to `limit` keys created before `before`. Returns how many."""
    columns = (idempotency_keys.c.scope, idempotency_keys.c.operation, idempotency_keys.c.key)
    oldest = select(*columns).where(idempotency_keys.c.created_at < before).limit(limit)
    result = await session.execute(delete(idempotency_keys).where(tuple_(*columns).in_(oldest)))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---- Stripe: customers, payments, events ---------------------------------------------


async def stripe_customer(session: AsyncSession, user_id: str) -> str | None:
    found: str | None = await session.scalar(
        select(stripe_customers.c.customer_id).where(stripe_customers.c.user_id == user_id)
    )
    return found


async def remember_customer(
    session: AsyncSession, user_id: str, customer_id: str, now: datetime
) -> str:
    """Keep the user's Stripe customer unless one is kept already; the one kept."""
    await session.execute(
        dialect_insert(session, stripe_customers)
        .values(user_id=user_id, customer_id=customer_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    kept = await stripe_customer(session, user_id)
    assert kept is not None
    return kept


def _payment(row: Row[Any]) -> Payment:
    return Payment(
        id=row.id,
        user_id=row.user_id,
        pack_id=row.pack_id,
        credits=row.credits,
        amount=row.amount,
        currency=row.currency,
        status=row.status,
        created_at=as_utc(row.created_at),
        paid_at=None if row.paid_at is None else as_utc(row.paid_at),
        payment_intent=row.payment_intent,
        refunded_amount=row.refunded_amount,
        disputed_amount=row.disputed_amount,
        dispute_id=row.dispute_id,
        receipt_url=row.receipt_url,
        credits_reversed=row.credits_reversed,
    )


async def add_payment(session: AsyncSession, payment: Payment) -> None:
    """Record a payment unless its session is recorded already."""
    await session.execute(
        dialect_insert(session, payments)
        .values(
            id=payment.id,
            user_id=payment.user_id,
            pack_id=payment.pack_id,
            credits=payment.credits,
            amount=payment.amount,
            currency=payment.currency,
            status=payment.status,
            payment_intent=payment.payment_intent,
            created_at=payment.created_at,
            paid_at=payment.paid_at,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def lock_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    row = (
        await session.execute(select(payments).where(payments.c.id == payment_id).with_for_update())
    ).first()
    return None if row is None else _payment(row)


async def save_payment(session: AsyncSession, payment: Payment) -> None:
    await session.execute(
        update(payments)
        .where(payments.c.id == payment.id)
        .values(
            status=payment.status,
            paid_at=payment.paid_at,
            payment_intent=payment.payment_intent,
            refunded_amount=payment.refunded_amount,
            disputed_amount=payment.disputed_amount,
            dispute_id=payment.dispute_id,
            receipt_url=payment.receipt_url,
            credits_reversed=payment.credits_reversed,
        )
    )


async def get_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    row = (await session.execute(select(payments).where(payments.c.id == payment_id))).first()
    return None if row is None else _payment(row)


async def lock_payment_of_intent(session: AsyncSession, payment_intent: str) -> Payment | None:
    """The payment Stripe's PaymentIntent paid, locked; None before it is known (the
    session's paid webhook records the intent)."""
    if not payment_intent:
        return None
    row = (
        await session.execute(
            select(payments).where(payments.c.payment_intent == payment_intent).with_for_update()
        )
    ).first()
    return None if row is None else _payment(row)


@dataclass(frozen=True)
class PaymentPage:
    payments: list[Payment]
    # (created_at, id) of the last payment on this page, or None on the last page.
    next_after: tuple[datetime, str] | None


async def list_payments(
    session: AsyncSession, user_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> PaymentPage:
    """A user's payments newest first, those after (older than) `after` when given."""
    query = select(payments).where(payments.c.user_id == user_id)
    if after is not None:
        query = query.where(tuple_(payments.c.created_at, payments.c.id) < after)
    rows = (
        await session.execute(
            query.order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(limit + 1)
        )
    ).all()
    more = len(rows) > limit
    found = [_payment(row) for row in rows[:limit]]
    return PaymentPage(found, (found[-1].created_at, found[-1].id) if more else None)


async def add_payment_refund(
    session: AsyncSession,
    refund_id: str,
    payment_id: str,
    admin_id: str,
    reason: str,
    amount: int,
    now: datetime,
) -> None:
    await session.execute(
        dialect_insert(session, payment_refunds)
        .values(
            id=refund_id,
            payment_id=payment_id,
            admin_id=admin_id,
            reason=reason,
            amount=amount,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def refund_reasons(session: AsyncSession, payment_id: str) -> list[tuple[str, str]]:
    """(admin id, reason) of the refunds admins asked for on a payment, oldest first."""
    rows = await session.execute(
        select(payment_refunds.c.admin_id, payment_refunds.c.reason)
        .where(payment_refunds.c.payment_id == payment_id)
        .order_by(payment_refunds.c.created_at)
    )
    return [(row.admin_id, row.reason) for row in rows]


async def get_entry(session: AsyncSession, user_id: str, entry_id: str) -> Entry | None:
    row = (
        await session.execute(
            select(ledger).where(ledger.c.id == entry_id, ledger.c.user_id == user_id)
        )
    ).first()
    return None if row is None else _entry(row)


async def refund_of(session: AsyncSession, charge_id: str) -> Entry | None:
    """The `refund` row of a charge row, if it was refunded."""
    row = (
        await session.execute(
            select(ledger).where(ledger.c.kind == "refund", ledger.c.reference == charge_id)
        )
    ).first()
    return None if row is None else _entry(row)


async def record_event(session: AsyncSession, event_id: str, kind: str, now: datetime) -> bool:
    """Record a Stripe event as handled; False when it was already. A copy racing the
    first waits for its transaction: if that committed, the copy records nothing."""
    recorded = await session.scalar(
        dialect_insert(session, stripe_events)
        .values(id=event_id, type=kind, received_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(stripe_events.c.id)
    )
    return recorded is not None


# ---- subscriptions -------------------------------------------------------------------


def _subscription(row: Row[Any]) -> Subscription:
    start, end = row.current_period_start, row.current_period_end
    return Subscription(
        id=row.id,
        user_id=row.user_id,
        plan_id=row.plan_id,
        status=row.status,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        current_period_start=None if start is None else as_utc(start),
        current_period_end=None if end is None else as_utc(end),
        cancel_at_period_end=row.cancel_at_period_end,
        version=row.version,
    )


async def lock_subscription(
    session: AsyncSession, subscription_id: str
) -> tuple[Subscription, int] | None:
    """A subscription, locked, and the `created` of the newest Stripe event applied."""
    row = (
        await session.execute(
            select(subscriptions).where(subscriptions.c.id == subscription_id).with_for_update()
        )
    ).first()
    return None if row is None else (_subscription(row), row.stripe_updated)


async def save_subscription(
    session: AsyncSession, subscription: Subscription, stripe_updated: int
) -> None:
    """Insert or update a subscription (the caller holds its wallet's lock)."""
    values = {
        "user_id": subscription.user_id,
        "plan_id": subscription.plan_id,
        "status": subscription.status,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "stripe_updated": stripe_updated,
        "version": subscription.version,
        "updated_at": subscription.updated_at,
    }
    await session.execute(
        dialect_insert(session, subscriptions)
        .values(id=subscription.id, created_at=subscription.created_at, **values)
        .on_conflict_do_update(index_elements=["id"], set_=values)
    )


async def user_subscriptions(session: AsyncSession, user_id: str) -> list[Subscription]:
    """The user's subscriptions, most recently changed first."""
    rows = (
        await session.execute(
            select(subscriptions)
            .where(subscriptions.c.user_id == user_id)
            .order_by(subscriptions.c.updated_at.desc(), subscriptions.c.id)
        )
    ).all()
    return [_subscription(row) for row in rows]


async def claim_invoice(
    session: AsyncSession,
    invoice_id: str,
    subscription_id: str,
    credits: int,
    period_end: datetime,
    now: datetime,
) -> bool:
    """Record an invoice's allowance as granted; False when it was already."""
    claimed = await session.scalar(
        dialect_insert(session, subscription_invoices)
        .values(
            id=invoice_id,
            subscription_id=subscription_id,
            credits=credits,
            period_end=period_end,
            granted_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(subscription_invoices.c.id)
    )
    return claimed is not None


# ---- usage summaries -------------------------------------------------------------------

# The generation kinds a charge's description names (generation's wallet client
# describes every hold "generation <KIND> job <id>"; a refund of a charge quotes it).
GENERATION_KINDS = ("TEXT", "CHAT", "IMAGE", "AVATAR_VIDEO", "IMAGE_TO_VIDEO")
OTHER_KIND = "OTHER"
Index("ix_ledger_created_at", ledger.c.created_at)
Index("ix_ledger_user_created_at", ledger.c.user_id, ledger.c.created_at)
Index("ix_payments_paid_at", payments.c.paid_at)


def _spent_kind() -> Any:
    return case(
        *[
            (ledger.c.description.like(f"%generation {kind} job %"), kind)
            for kind in GENERATION_KINDS
        ],
        else_=OTHER_KIND,
    )


async def spent_per_day(
    session: AsyncSession, since: datetime, user_id: str | None = None
) -> list[tuple[str, str, int]]:
    """(UTC day, generation kind, credits spent) of the `charge` rows minus their
    `refund` rows since `since`; of one user's ledger or of all."""
    day, kind = daily.utc_day(ledger.c.created_at), _spent_kind()
    query = select(day, kind, func.sum(ledger.c.amount)).where(
        ledger.c.kind.in_(("charge", "refund")), ledger.c.created_at >= since
    )
    if user_id is not None:
        query = query.where(ledger.c.user_id == user_id)
    rows = await session.execute(query.group_by(day, kind))
    return [(row[0], row[1], -int(row[2])) for row in rows]


async def credited_per_day(
    session: AsyncSession, since: datetime, kinds: Sequence[str]
) -> list[tuple[str, str, int]]:
    """(UTC day, ledger kind, credits) of every wallet's rows of `kinds` since `since`."""
    day = daily.utc_day(ledger.c.created_at)
    rows = await session.execute(
        select(day, ledger.c.kind, func.sum(ledger.c.amount))
        .where(ledger.c.kind.in_(kinds), ledger.c.created_at >= since)
        .group_by(day, ledger.c.kind)
    )
    return [(row[0], row[1], int(row[2])) for row in rows]


async def revenue_per_day(session: AsyncSession, since: datetime) -> list[tuple[str, str, int]]:
    """(UTC day, currency, amount) of the payments paid since `since`, by the day paid."""
    day = daily.utc_day(payments.c.paid_at)
    rows = await session.execute(
        select(day, payments.c.currency, func.sum(payments.c.amount))
        .where(payments.c.paid_at >= since)
        .group_by(day, payments.c.currency)
    )
    return [(row[0], row[1], int(row[2])) for row in rows]
