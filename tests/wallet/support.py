"""Helpers for the wallet tests: the ledger invariants checked straight on the
database, and reading error reasons off failed calls."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kit.errors import error_details
from services.wallet.store import hold_lots, holds, ledger, lots, wallets

# Kinds that create or destroy credits (captures aside); transfers only move them.
MINTING = (
    "grant",
    "signup_bonus",
    "refund",
    "purchase",
    "debit",
    "purchase_refunded",
    "purchase_disputed",
    "debt_repaid",
    "expiry",
    "allowance",
)


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    reason: str
    metadata: dict[str, str]


async def failure(call: Awaitable[Any]) -> Failure:
    """The status of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    details = error_details(error.value.trailing_metadata())
    return Failure(
        error.value.code(),
        details.reason if details else "",
        dict(details.metadata) if details else {},
    )


@dataclass(frozen=True)
class Books:
    """What the database says about a set of wallets."""

    balances: dict[str, int]
    held: dict[str, int]
    debts: dict[str, int]
    minted: int  # grants + signup bonuses + refunds + purchases, less what was taken back
    charged: int  # credits taken by captures (positive)
    violations: list[str]

    @property
    def total(self) -> int:
        return sum(self.balances.values())


async def books(engine: AsyncEngine, user_ids: Iterable[str]) -> Books:
    """Check every ledger invariant of `user_ids`' wallets; `violations` lists each
    broken one (empty when all hold):
      - balance == sum(ledger amounts), and the last row's balance_after == balance;
      - every row's balance_after == the previous one's + its amount, never < 0;
      - the same for debt: debt == sum(debt_change), debt_after runs, never < 0;
        a row moves credits or debt; a wallet in debt has nothing available;
      - held == sum(open holds), 0 <= held <= balance (available >= 0);
      - captured holds charged exactly one `charge` row of captured_amount;
      - transfers come in pairs: each transfer_out has its transfer_in, same size;
      - lots: sum(remaining) == balance, sum(reserved) == held, 0 <= reserved <=
        remaining per lot, and each open hold reserved exactly its amount of them."""
    ids = sorted(set(user_ids))
    violations: list[str] = []
    balances: dict[str, int] = {}
    held: dict[str, int] = {}
    debts: dict[str, int] = {}
    minted = charged = 0
    async with engine.connect() as conn:
        for user_id in ids:
            wallet = (
                await conn.execute(select(wallets).where(wallets.c.user_id == user_id))
            ).first()
            if wallet is None:
                violations.append(f"{user_id}: no wallet")
                continue
            balances[user_id], held[user_id] = wallet.balance, wallet.held
            debts[user_id] = wallet.debt
            rows = (
                await conn.execute(
                    select(ledger).where(ledger.c.user_id == user_id).order_by(ledger.c.seq)
                )
            ).all()
            running = owed = 0
            for row in rows:
                running += row.amount
                owed += row.debt_change
                if row.amount == 0 and row.debt_change == 0:
                    violations.append(f"{user_id}: row {row.id} moves 0 credits and 0 debt")
                if row.debt_after != owed or owed < 0:
                    violations.append(
                        f"{user_id}: row {row.id} debt_after {row.debt_after} != {owed}"
                    )
                if row.balance_after != running:
                    violations.append(
                        f"{user_id}: row {row.id} balance_after {row.balance_after} != {running}"
                    )
                if running < 0:
                    violations.append(f"{user_id}: balance went negative at row {row.id}")
                if row.kind in MINTING:
                    minted += row.amount
                elif row.kind == "charge":
                    charged -= row.amount
            if running != wallet.balance:
                violations.append(f"{user_id}: balance {wallet.balance} != sum(ledger) {running}")
            if owed != wallet.debt:
                violations.append(f"{user_id}: debt {wallet.debt} != sum(debt_change) {owed}")
            if wallet.debt > 0 and wallet.balance != wallet.held:
                violations.append(f"{user_id}: in debt with credits available")
            open_held = await conn.scalar(
                select(func.coalesce(func.sum(holds.c.amount), 0)).where(
                    holds.c.user_id == user_id, holds.c.status == "open"
                )
            )
            if wallet.held != open_held:
                violations.append(f"{user_id}: held {wallet.held} != sum(open holds) {open_held}")
            if not 0 <= wallet.held <= wallet.balance:
                violations.append(
                    f"{user_id}: available < 0 (balance {wallet.balance}, held {wallet.held})"
                )
            violations += await _lot_violations(conn, user_id, wallet.balance, wallet.held)
        captured = (
            await conn.execute(
                select(holds.c.id, holds.c.captured_amount).where(
                    holds.c.user_id.in_(ids), holds.c.status == "captured"
                )
            )
        ).all()
        charges = {
            row.reference: -row.amount
            for row in (
                await conn.execute(
                    select(ledger.c.reference, ledger.c.amount).where(
                        ledger.c.user_id.in_(ids), ledger.c.kind == "charge"
                    )
                )
            ).all()
        }
        charge_count = await conn.scalar(
            select(func.count()).where(ledger.c.user_id.in_(ids), ledger.c.kind == "charge")
        )
        expected = {row.id: row.captured_amount for row in captured if row.captured_amount}
        if charges != expected or charge_count != len(expected):
            violations.append(f"charges {charges} do not match captured holds {expected}")
        transfers = (
            await conn.execute(
                select(ledger.c.correlation_id, ledger.c.kind, ledger.c.amount).where(
                    ledger.c.user_id.in_(ids), ledger.c.kind.in_(("transfer_in", "transfer_out"))
                )
            )
        ).all()
        pairs: dict[str, list[tuple[str, int]]] = {}
        for row in transfers:
            pairs.setdefault(row.correlation_id, []).append((row.kind, row.amount))
        for correlation, sides in pairs.items():
            kinds = sorted(kind for kind, _ in sides)
            if kinds != ["transfer_in", "transfer_out"] or sum(a for _, a in sides) != 0:
                violations.append(f"transfer {correlation} is not one balanced pair: {sides}")
    return Books(balances, held, debts, minted, charged, violations)


async def _lot_violations(conn: Any, user_id: str, balance: int, held: int) -> list[str]:
    found: list[str] = []
    rows = (await conn.execute(select(lots).where(lots.c.user_id == user_id))).all()
    remaining = sum(row.remaining for row in rows)
    reserved = sum(row.reserved for row in rows)
    if remaining != balance:
        found.append(f"{user_id}: sum(lot remaining) {remaining} != balance {balance}")
    if reserved != held:
        found.append(f"{user_id}: sum(lot reserved) {reserved} != held {held}")
    for row in rows:
        if not 0 <= row.reserved <= row.remaining <= row.amount:
            found.append(f"{user_id}: lot {row.id} out of range")
    by_hold = (
        await conn.execute(
            select(holds.c.id, holds.c.amount, func.coalesce(func.sum(hold_lots.c.amount), 0))
            .select_from(holds.outerjoin(hold_lots, hold_lots.c.hold_id == holds.c.id))
            .where(holds.c.user_id == user_id, holds.c.status == "open")
            .group_by(holds.c.id, holds.c.amount)
        )
    ).all()
    for hold_id, amount, on_lots in by_hold:
        if amount != on_lots:
            found.append(f"{user_id}: open hold {hold_id} of {amount} reserved {on_lots}")
    return found
