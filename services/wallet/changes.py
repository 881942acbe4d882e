"""Recording one change to a wallet, the same way for every use case: its ledger
row, `wallet.changed`, the debt the change lets the wallet pay, the low-balance
alert it crosses, and the wallet row itself — all in the caller's transaction.

Every use case that changes a wallet's balance or held credits ends with `record`,
so two rules hold whatever changed it:
  - credits that become available while the wallet owes (a hold released, a
    purchase, a grant) pay the debt at once: a `debt_repaid` row;
  - available falling below the owner's threshold publishes `wallet.low_balance`
    once per crossing (armed again once available is back at or above it).

And the credits are kept lot by lot (domain.Lot): every credit goes through
`credit_wallet`, which writes its lot with the ledger row; every debit draws from
the lots in spend order (`spend`), the one expiring first, then those that never
expire; `expire_lots` turns what is left of lots past their expiry into `expiry`
rows. So sum(lot remaining) == balance and sum(lot reserved) == held, always."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.outbox import add_event
from klik.events.v1.events_pb2 import WalletChanged, WalletLowBalance
from services.wallet import domain, store
from services.wallet.domain import (
    Bucket,
    Change,
    Entry,
    Kind,
    Lot,
    Resolution,
    TakeBack,
    Wallet,
)

WALLET_CHANGED = event_type_of(WalletChanged)
WALLET_LOW_BALANCE = event_type_of(WalletLowBalance)


async def record(
    session: AsyncSession,
    wallet: Wallet,
    change: Kind | Change,
    amount: int,
    now: datetime,
    entry: Entry | None = None,
    correlation_id: str = "",
) -> Wallet:
    """Write a change that left `wallet` as it is (its ledger row `entry`, if any,
    under `correlation_id`, else its own id), then the debt repayment and the
    low-balance alert it causes, and save the wallet. Returns the wallet as saved."""
    if entry is not None:
        await store.add_entry(session, entry, correlation_id or entry.id)
    await wallet_changed(session, wallet, change, amount, entry)
    wallet, paid = domain.repay(wallet, now)
    if paid:
        await spend(session, wallet.user_id, paid)
        reference = entry.id if entry is not None else ""
        repaid = domain.new_entry(
            wallet, Kind.DEBT_REPAID, -paid, reference, "debt repaid", now, debt_change=-paid
        )
        await store.add_entry(session, repaid, repaid.id)
        await wallet_changed(session, wallet, Kind.DEBT_REPAID, -paid, repaid)
    wallet, crossed = domain.watch_low_balance(wallet)
    await store.save_wallet(session, wallet)
    if crossed:
        await low_balance(session, wallet)
    return wallet


async def wallet_changed(
    session: AsyncSession,
    wallet: Wallet,
    kind: Kind | Change,
    amount: int,
    entry: Entry | None = None,
) -> None:
    """Record `wallet.changed` in the caller's transaction: the wallet as it is after
    the change, what changed it, and the ledger row when one was written."""
    await add_event(
        session,
        WALLET_CHANGED,
        WalletChanged(
            user_id=wallet.user_id,
            balance=wallet.balance,
            held=wallet.held,
            available=wallet.available,
            transaction_id=entry.id if entry is not None else "",
            kind=kind.value,
            amount=amount,
            debt=wallet.debt,
        ),
        aggregate_id=wallet.user_id,
        user_id=wallet.user_id,
    )


async def low_balance(session: AsyncSession, wallet: Wallet) -> None:
    """Record `wallet.low_balance`: available just fell below the owner's threshold."""
    await add_event(
        session,
        WALLET_LOW_BALANCE,
        WalletLowBalance(
            user_id=wallet.user_id, available=wallet.available, threshold=wallet.low_balance
        ),
        aggregate_id=wallet.user_id,
        user_id=wallet.user_id,
    )


# ---- lots: credits in, credits out, credits expired ----------------------------------


async def credit_wallet(
    session: AsyncSession,
    wallet: Wallet,
    amount: int,
    now: datetime,
    *,
    kind: Kind,
    bucket: Bucket | str,
    expires_at: datetime | None = None,
    reference: str = "",
    description: str = "",
    correlation_id: str = "",
    parts: Sequence[tuple[int, datetime | None]] = (),
) -> tuple[Wallet, Entry]:
    """Credit `amount` (> 0) to `wallet` (locked by the caller, open): its ledger row
    of `kind`, its lot of `bucket` expiring at `expires_at` (None: never), then
    `record` (the event, the debt it pays, the low-balance alert). The one way
    credits enter a wallet. `parts` splits the credit into several lots of
    `bucket`, (amount, expires_at) each, summing to `amount` (a transfer keeps the
    sender's expiries). Returns the wallet as saved and the row.

    A lot whose `expires_at` has already passed is credited and expires at the
    next sweep (an `expiry` row). INVALID_AMOUNT past MAX_BALANCE."""
    lots = list(parts) or [(amount, expires_at)]
    if sum(part for part, _ in lots) != amount or any(part <= 0 for part, _ in lots):
        raise AssertionError(f"lot parts {lots} do not make {amount}")
    credited = domain.credit(wallet, amount, now)
    entry = domain.new_entry(credited, kind, amount, reference, description, now)
    for part, expiry in lots:
        lot = domain.new_lot(wallet.user_id, bucket, part, expiry, reference, now)
        await store.add_lot(session, lot, entry.id)
    saved = await record(session, credited, kind, amount, now, entry, correlation_id)
    return saved, entry


async def spend(
    session: AsyncSession,
    user_id: str,
    amount: int,
    *,
    buckets: frozenset[Bucket] | None = None,
    first: Callable[[Lot], bool] | None = None,
    lots: list[Lot] | None = None,
) -> list[tuple[Lot, int]]:
    """Take `amount` credits the wallet has available off its lots (domain.draw):
    the lot expiring first, then those that never expire. Returns each lot as it
    was with what was taken from it. (A debt repayment may take credits of a lot
    that expires later in the same transaction: they were still on the balance.)
    `lots`: the wallet's live lots as `spendable` just read them (saves a read)."""
    if amount <= 0:
        return []
    before = lots if lots is not None else await store.live_lots(session, user_id)
    after, draws = domain.draw(before, amount, buckets=buckets, first=first)
    await store.save_lots(session, before, after)
    by_id = {lot.id: lot for lot in before}
    return [(by_id[d.lot_id], d.amount) for d in draws]


async def expire_lots(session: AsyncSession, wallet: Wallet, now: datetime) -> Wallet:
    """Expire the unreserved remainder of each lot past its `expires_at`: one
    `expiry` row per lot (the lot's id as its reference). Under the wallet's lock
    the lots are read again, so whoever gets there first (the sweeper in any
    replica, or a use case about to spend) writes the row, and only once. Returns
    the wallet as saved (unchanged when nothing was due)."""
    wallet, _ = await spendable(session, wallet, now)
    return wallet


async def spendable(
    session: AsyncSession, wallet: Wallet, now: datetime
) -> tuple[Wallet, list[Lot]]:
    """`expire_lots`, then the wallet as saved and its lots as they are now: what a
    use case about to spend needs (an expiry takes nothing available, so it never
    makes the wallet pay debt and the lots returned stay current)."""
    before = await store.live_lots(session, wallet.user_id)
    now_lots = {lot.id: lot for lot in before}
    for lot in domain.due_lots(before, now):
        gone = lot.available
        wallet, expired = domain.expire_credits(wallet, lot, now)
        now_lots[lot.id] = expired
        await store.save_lots(session, [lot], [expired])
        when = lot.expires_at.isoformat() if lot.expires_at else ""
        entry = domain.new_entry(
            wallet, Kind.EXPIRY, -gone, lot.id, f"{lot.bucket} credits expired at {when}", now
        )
        wallet = await record(session, wallet, Kind.EXPIRY, -gone, now, entry)
    return wallet, list(now_lots.values())


async def reserve(session: AsyncSession, hold_id: str, lots: list[Lot], amount: int) -> None:
    """A new hold's reservation of `amount` from the wallet's `lots` (as
    `spendable` returned them), in spend order."""
    before = lots
    after, draws = domain.reserve_lots(before, amount)
    await store.save_lots(session, before, after)
    await store.add_hold_lots(session, hold_id, draws)


async def resolve_hold(
    session: AsyncSession,
    resolution: Resolution,
    change: Kind | Change,
    now: datetime,
    entry: Entry | None = None,
) -> Wallet:
    """Save a resolved hold and its wallet's change (a charge's row under the hold's
    id): what it charged is consumed from the lots it reserved (first the lot that
    expires first, even one that expired while held), the rest goes back to them —
    and what goes back to a lot that expired meanwhile expires now. The wallet as
    saved."""
    hold = resolution.hold
    reserved = await store.hold_draws(session, hold.id)
    before = await store.live_lots(session, hold.user_id)
    after, consumed = domain.settle_hold(before, reserved, resolution.charged)
    await store.save_lots(session, before, after)
    await store.save_captures(session, hold.id, consumed)
    await store.save_hold(session, hold)
    amount = entry.amount if entry is not None else -resolution.freed
    wallet = await record(session, resolution.wallet, change, amount, now, entry, hold.id)
    return await expire_lots(session, wallet, now)


async def take_back(
    session: AsyncSession,
    wallet: Wallet,
    credits: int,
    kind: Kind,
    reference: str,
    description: str,
    now: datetime,
) -> TakeBack:
    """Take a purchase's `credits` back (domain.take_back: what is available comes
    off the balance, the rest becomes debt): from that purchase's own lot first
    (`reference`, its payment id), then the other lots in spend order."""
    wallet, lots = await spendable(session, wallet, now)
    back = domain.take_back(wallet, credits, now)

    def own(lot: Lot) -> bool:
        return lot.bucket == Bucket.PURCHASE and lot.reference == reference

    await spend(session, wallet.user_id, back.taken, first=own, lots=lots)
    entry = domain.new_entry(back.wallet, kind, -back.taken, reference, description, now, back.owed)
    saved = await record(session, back.wallet, kind, -back.taken, now, entry)
    return TakeBack(saved, back.taken, back.owed)
