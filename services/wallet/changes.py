"""Recording one change to a wallet, the same way for every use case: its ledger
row, `wallet.changed`, the debt the change lets the wallet pay, the low-balance
alert it crosses, and the wallet row itself — all in the caller's transaction.

Every use case that changes a wallet's balance or held credits ends with `record`,
so two rules hold whatever changed it:
  - credits that become available while the wallet owes (a hold released, a
    purchase, a grant) pay the debt at once: a `debt_repaid` row;
  - available falling below the owner's threshold publishes `wallet.low_balance`
    once per crossing (armed again once available is back at or above it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.outbox import add_event
from klik.events.v1.events_pb2 import WalletChanged, WalletLowBalance
from services.wallet import domain, store
from services.wallet.domain import Change, Entry, Kind, Wallet

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
