"""The wallet's use cases, each one transaction: read and lock what it needs (in the
order store.py prescribes), ask `domain` what to write, write the wallet rows, ledger
rows, holds and `wallet.changed` events together, and commit.

Money-moving use cases are idempotent by key (`_once`): the key is claimed by the
transaction's first statement and its response stored by its last, so the effect
and the record of it commit together or not at all. A request that fails with a
domain error changes nothing and leaves its key free for a retry."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import DomainError
from kit.idempotency import check_key, check_replay, fingerprint
from services.wallet import domain, store
from services.wallet.changes import (
    credit_wallet,
    expire_lots,
    record,
    reserve,
    resolve_hold,
    spend,
    spendable,
)
from services.wallet.domain import (
    Bucket,
    Change,
    CreditSummary,
    Entry,
    Hold,
    HoldStatus,
    Kind,
    Wallet,
)
from services.wallet.store import EntryPage

T = TypeVar("T")

# Operation names: the idempotency scope within a caller.
TRANSFER = "transfer"
GRANT = "grant"
PLACE_HOLD = "place_hold"
CAPTURE_HOLD = "capture_hold"
RELEASE_HOLD = "release_hold"
DEBIT = "debit"
REFUND_CHARGE = "refund_charge"


@dataclass(frozen=True)
class Captured:
    hold: Hold
    entry: Entry | None  # the `charge` row; None when nothing was charged


@dataclass(frozen=True)
class _Refusal:
    """An effect that committed a change (an expiry it found due) and still refuses
    the request: the key is not kept, the error is raised after the commit."""

    error: DomainError


class Ledger:
    """The use cases over the wallet's database, each one transaction of `uow` (whose
    commits wake the outbox relay); `clock` is injectable for tests."""

    def __init__(self, uow: UnitOfWork, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    # ---- reads ---------------------------------------------------------------------

    async def wallet(self, user_id: str) -> Wallet:
        found = await self._uow.run_read(lambda session: store.get_wallet(session, user_id))
        return domain.require_open(found, user_id, "you")

    async def credits(
        self, user_id: str, *, open_only: bool = True
    ) -> tuple[Wallet, CreditSummary]:
        """A wallet with its balance by bucket and its next expiry, read together:
        the caller's own open wallet, or (`open_only=False`, for admins) any user's,
        closed ones included."""
        if not domain.plausible_id(user_id):
            raise domain.wallet_not_found(user_id)

        async def read(session: AsyncSession) -> tuple[Wallet | None, CreditSummary]:
            found = await store.get_wallet(session, user_id)
            return found, domain.summarize(await store.live_lots(session, user_id))

        found, summary = await self._uow.run_read(read)
        if open_only:
            return domain.require_open(found, user_id, "you"), summary
        if found is None:
            raise domain.wallet_not_found(user_id)
        return found, summary

    async def transactions(self, user_id: str, *, before: int | None, limit: int) -> EntryPage:
        return await self._uow.run_read(
            lambda session: store.list_entries(session, user_id, before=before, limit=limit)
        )

    async def any_wallet(self, user_id: str) -> Wallet:
        """Any user's wallet, closed ones included (admins look at those too)."""
        if not domain.plausible_id(user_id):
            raise domain.wallet_not_found(user_id)
        found = await self._uow.run_read(lambda session: store.get_wallet(session, user_id))
        if found is None:
            raise domain.wallet_not_found(user_id)
        return found

    # ---- the owner's settings ------------------------------------------------------

    async def set_low_balance(self, user_id: str, threshold: int) -> tuple[Wallet, CreditSummary]:
        """Set (0: clear) the wallet's low-balance threshold. Setting one the wallet
        is already below sends no alert: the next crossing does."""
        domain.require_threshold(threshold)

        async def effect(session: AsyncSession) -> tuple[Wallet, CreditSummary]:
            wallet = await self._lock_open(session, user_id)
            wallet = domain.set_low_balance(wallet, threshold)
            await store.save_wallet(session, wallet)
            return wallet, domain.summarize(await store.live_lots(session, user_id))

        return await self._uow.run_write(effect)

    # ---- money-moving use cases ----------------------------------------------------

    async def transfer(
        self, scope: str, key: str, *, sender: str, recipient: str, amount: int, note: str
    ) -> Entry:
        """Move `amount` from `sender` to `recipient`: a `transfer_out` and a
        `transfer_in` row in one transaction. Returns the sender's row."""
        check_key(key, required=True)
        domain.require_amount(amount)
        domain.require_user_id(recipient, "to_user_id")
        domain.require_text(note, "note", domain.MAX_DESCRIPTION_LENGTH)
        domain.refuse_self_transfer(sender, recipient)

        async def effect(session: AsyncSession, now: datetime) -> Entry:
            if not domain.plausible_id(recipient):
                raise domain.wallet_not_found(recipient, "the recipient")
            locked = await store.lock_wallets(session, (sender, recipient))
            source = domain.require_open(locked[sender], sender, "you")
            target = domain.require_open(locked[recipient], recipient, "the recipient")
            source, lots = await spendable(session, source, now)
            source = domain.debit(source, amount, now)
            domain.require_transferable(lots, amount)
            drawn = await spend(session, sender, amount, buckets=domain.TRANSFERABLE, lots=lots)
            correlation = str(uuid.uuid4())
            out = domain.new_entry(source, Kind.TRANSFER_OUT, -amount, recipient, note, now)
            await record(session, source, Kind.TRANSFER_OUT, -amount, now, out, correlation)
            # The recipient's credits keep the expiries of the sender's they came from.
            await credit_wallet(
                session,
                target,
                amount,
                now,
                kind=Kind.TRANSFER_IN,
                bucket=Bucket.GRANT,
                reference=sender,
                description=note,
                correlation_id=correlation,
                parts=[(part, lot.expires_at) for lot, part in drawn],
            )
            return out

        fields: dict[str, str | int] = {"to_user_id": recipient, "amount": amount, "note": note}
        return await self._once(scope, TRANSFER, key, fields, effect, _dump_entry, _load_entry)

    async def grant(
        self,
        scope: str,
        key: str,
        *,
        user_id: str,
        amount: int,
        reason: str,
        granted_by: str,
        expires_at: datetime | None = None,
    ) -> Entry:
        """Add `amount` to a wallet (a `grant` row referencing who granted it), as a
        lot of bucket `grant` that expires at `expires_at` (None: never; else it
        must be in the future)."""
        check_key(key, required=True)
        domain.require_amount(amount)
        domain.require_user_id(user_id, "user_id")
        domain.require_text(reason, "reason", domain.MAX_DESCRIPTION_LENGTH)

        async def effect(session: AsyncSession, now: datetime) -> Entry:
            domain.require_expiry(expires_at, now)
            wallet = await self._lock_open(session, user_id)
            _, entry = await credit_wallet(
                session,
                wallet,
                amount,
                now,
                kind=Kind.GRANT,
                bucket=Bucket.GRANT,
                expires_at=expires_at,
                reference=granted_by,
                description=reason,
            )
            return entry

        fields: dict[str, str | int] = {"user_id": user_id, "amount": amount, "reason": reason}
        if expires_at is not None:  # (absent otherwise: keys of older grants still match)
            fields["expires_at"] = expires_at.isoformat()
        return await self._once(scope, GRANT, key, fields, effect, _dump_entry, _load_entry)

    async def debit(
        self, scope: str, key: str, *, user_id: str, amount: int, reason: str, debited_by: str
    ) -> Entry:
        """Take `amount` off a wallet's available credits (a `debit` row referencing
        the admin, with the reason); refused beyond what is available."""
        check_key(key, required=True)
        domain.require_amount(amount)
        domain.require_user_id(user_id, "user_id")
        domain.require_reason(reason)

        async def effect(session: AsyncSession, now: datetime) -> Entry:
            wallet, lots = await spendable(session, await self._lock_open(session, user_id), now)
            wallet = domain.debit(wallet, amount, now)
            await spend(session, user_id, amount, lots=lots)
            entry = domain.new_entry(wallet, Kind.DEBIT, -amount, debited_by, reason, now)
            await record(session, wallet, Kind.DEBIT, -amount, now, entry)
            return entry

        fields: dict[str, str | int] = {"user_id": user_id, "amount": amount, "reason": reason}
        return await self._once(scope, DEBIT, key, fields, effect, _dump_entry, _load_entry)

    async def refund_charge(
        self,
        scope: str,
        key: str,
        *,
        user_id: str,
        transaction_id: str,
        reason: str,
        refunded_by: str,
    ) -> Entry:
        """Give a `charge` row's credits back (a `refund` row naming the charge),
        once per charge: FAILED_PRECONDITION `CHARGE_ALREADY_REFUNDED` after."""
        check_key(key, required=True)
        domain.require_user_id(user_id, "user_id")
        domain.require_reason(reason)

        async def effect(session: AsyncSession, now: datetime) -> Entry:
            wallet = await self._lock_open(session, user_id)
            if not domain.plausible_id(transaction_id):
                raise domain.charge_not_found(transaction_id)
            charge = await store.get_entry(session, user_id, transaction_id)
            if charge is None or charge.kind != Kind.CHARGE:
                raise domain.charge_not_found(transaction_id)
            # Under the wallet's lock: no other refund of this charge is in flight.
            if await store.refund_of(session, charge.id) is not None:
                raise domain.charge_already_refunded(charge.id)
            why = f"refund of {charge.description or 'a charge'}: {reason} (admin {refunded_by})"
            # A new lot that never expires (the charge's own lots may have expired
            # or been spent since), in bucket allowance if allowance paid for it.
            bucket = domain.refund_bucket(await store.captured_buckets(session, charge.reference))
            _, entry = await credit_wallet(
                session,
                wallet,
                -charge.amount,
                now,
                kind=Kind.REFUND,
                bucket=bucket,
                reference=charge.id,
                description=why,
            )
            return entry

        fields: dict[str, str | int] = {
            "user_id": user_id,
            "transaction_id": transaction_id,
            "reason": reason,
        }
        return await self._once(scope, REFUND_CHARGE, key, fields, effect, _dump_entry, _load_entry)

    async def place_hold(
        self,
        scope: str,
        key: str,
        *,
        user_id: str,
        amount: int,
        expires_at: datetime,
        reference: str = "",
        description: str = "",
    ) -> Hold:
        """Reserve `amount` of the wallet's available credits until `expires_at`."""
        check_key(key, required=True)
        domain.require_amount(amount)
        domain.require_user_id(user_id, "user_id")
        domain.require_text(reference, "reference", domain.MAX_REFERENCE_LENGTH)
        domain.require_text(description, "description", domain.MAX_DESCRIPTION_LENGTH)

        async def effect(session: AsyncSession, now: datetime) -> Hold:
            # Checked after the key: a replay after expires_at passed still gets the
            # stored hold.
            domain.require_future(expires_at, now)
            wallet, lots = await spendable(session, await self._lock_open(session, user_id), now)
            wallet = domain.reserve(wallet, amount, now)
            hold = domain.new_hold(user_id, amount, expires_at, reference, description, now)
            await store.add_hold(session, hold)
            await reserve(session, hold.id, lots, amount)
            await record(session, wallet, Change.HOLD_PLACED, amount, now)
            return hold

        fields: dict[str, str | int] = {
            "user_id": user_id,
            "amount": amount,
            "expires_at": expires_at.isoformat(),
            "reference": reference,
            "description": description,
        }
        return await self._once(scope, PLACE_HOLD, key, fields, effect, _dump_hold, _load_hold)

    async def capture_hold(self, scope: str, key: str, *, hold_id: str, amount: int) -> Captured:
        """Charge min(amount, held) as a `charge` row and release the rest."""
        check_key(key, required=True)
        domain.require_amount(amount, allow_zero=True)

        async def effect(session: AsyncSession, now: datetime) -> Captured | _Refusal:
            hold, wallet = await self._lock_hold(session, hold_id)
            try:
                resolution = domain.capture(hold, wallet, amount, now)
            except domain.HoldExpired as expired:
                if not expired.expire_now:
                    raise
                # Record the expiry the sweeper has not reached yet, then refuse.
                due = domain.expire(hold, wallet, now)
                assert due is not None
                await resolve_hold(session, due, Change.HOLD_EXPIRED, now)
                return _Refusal(expired)
            entry = None
            if resolution.charged:
                charged = -resolution.charged
                entry = domain.new_entry(
                    resolution.wallet, Kind.CHARGE, charged, hold.id, hold.description, now
                )
                await resolve_hold(session, resolution, Kind.CHARGE, now, entry)
            else:
                await resolve_hold(session, resolution, Change.HOLD_RELEASED, now)
            return Captured(resolution.hold, entry)

        fields: dict[str, str | int] = {"hold_id": hold_id, "amount": amount}
        return await self._once(
            scope, CAPTURE_HOLD, key, fields, effect, _dump_captured, _load_captured
        )

    async def release_hold(self, scope: str, key: str, *, hold_id: str) -> Hold:
        """Give an open hold's credits back; a hold already released or expired is
        returned as it is."""
        check_key(key, required=True)

        async def effect(session: AsyncSession, now: datetime) -> Hold:
            hold, wallet = await self._lock_hold(session, hold_id)
            resolution = domain.release(hold, wallet, now)
            if resolution is None:
                return hold
            expired = resolution.hold.status == HoldStatus.EXPIRED
            change = Change.HOLD_EXPIRED if expired else Change.HOLD_RELEASED
            await resolve_hold(session, resolution, change, now)
            return resolution.hold

        fields: dict[str, str | int] = {"hold_id": hold_id}
        return await self._once(scope, RELEASE_HOLD, key, fields, effect, _dump_hold, _load_hold)

    # ---- background work -----------------------------------------------------------

    async def expire_due(self, batch: int = 100) -> int:
        """Expire open holds past their `expires_at`, one wallet per transaction.
        Returns how many holds expired. Safe to run in every replica at once: each
        wallet is locked and its due holds read again under the lock."""

        async def sweep(session: AsyncSession, wallet: Wallet, now: datetime) -> int:
            expired = 0
            for hold in await store.lock_open_holds(session, wallet.user_id, due_by=now):
                due = domain.expire(hold, wallet, now)
                if due is not None:
                    wallet = await resolve_hold(session, due, Change.HOLD_EXPIRED, now)
                    expired += 1
            return expired

        return await self._sweep(store.wallets_with_due_holds, sweep, batch)

    async def expire_lots_due(self, batch: int = 100) -> int:
        """Expire what is left of lots past their `expires_at` (an `expiry` row each),
        one wallet per transaction. Returns how many wallets had credits expire.
        Safe to run in every replica at once: each wallet is locked and its lots
        read again under the lock, so each remainder expires in one row, once."""

        async def sweep(session: AsyncSession, wallet: Wallet, now: datetime) -> int:
            return int((await expire_lots(session, wallet, now)).balance != wallet.balance)

        return await self._sweep(store.wallets_with_due_lots, sweep, batch)

    async def _sweep(
        self,
        owners_due: Callable[[AsyncSession, datetime, int], Awaitable[list[str]]],
        sweep: Callable[[AsyncSession, Wallet, datetime], Awaitable[int]],
        batch: int,
    ) -> int:
        """Run `sweep` on each wallet `owners_due` names (read without locks), one
        locked wallet per transaction; the sum of what they did."""
        async with self._uow.read() as session:
            owners = await owners_due(session, self._clock(), batch)
        done = 0
        for user_id in owners:
            async with self._uow.write() as session:
                wallet = await store.lock_wallet(session, user_id)
                assert wallet is not None
                done += await sweep(session, wallet, self._clock())
        return done

    async def prune_keys(self, older_than: timedelta, batch: int = 1000) -> int:
        """Forget idempotency keys older than `older_than`. Returns how many."""
        pruned = 0
        while True:
            async with self._uow.write() as session:
                count = await store.prune_keys(session, self._clock() - older_than, batch)
            pruned += count
            if count < batch:
                return pruned

    # ---- steps shared by the use cases ---------------------------------------------

    async def _once(
        self,
        scope: str,
        operation: str,
        key: str,
        fields: Mapping[str, str | int],
        effect: Callable[[AsyncSession, datetime], Awaitable[T | _Refusal]],
        dump: Callable[[T], str],
        load: Callable[[str], T],
    ) -> T:
        """Run `effect` once per (scope, operation, key): a later request with the
        same key and the same fields gets the stored result; with other fields,
        ABORTED `IDEMPOTENCY_KEY_REUSED`."""
        offered = fingerprint(operation, fields)

        async def once(session: AsyncSession) -> T | _Refusal:
            now = self._clock()
            stored = await store.claim_key(session, scope, operation, key, offered, now)
            if stored is not None:
                check_replay(stored.fingerprint, offered, operation)
                # Claim and response commit together: a visible key has its response.
                assert stored.response is not None
                return load(stored.response)
            outcome = await effect(session, now)
            if isinstance(outcome, _Refusal):
                await store.forget_key(session, scope, operation, key)
            else:
                await store.save_response(session, scope, operation, key, dump(outcome))
            return outcome

        # One transaction, run again on a fresh connection if it was lost before COMMIT.
        outcome = await self._uow.run_write(once)
        if isinstance(outcome, _Refusal):
            raise outcome.error
        return outcome

    async def _lock_open(self, session: AsyncSession, user_id: str) -> Wallet:
        if not domain.plausible_id(user_id):
            raise domain.wallet_not_found(user_id)
        return domain.require_open(await store.lock_wallet(session, user_id), user_id)

    async def _lock_hold(self, session: AsyncSession, hold_id: str) -> tuple[Hold, Wallet]:
        """A hold and its wallet, both locked: the wallet first (store.py's order),
        then the hold is read again under that lock."""
        if not domain.plausible_id(hold_id):
            raise domain.hold_not_found(hold_id)
        seen = await store.get_hold(session, hold_id)
        if seen is None:
            raise domain.hold_not_found(hold_id)
        wallet = await store.lock_wallet(session, seen.user_id)
        hold = await store.lock_hold(session, hold_id)
        assert wallet is not None and hold is not None  # holds are never deleted
        return hold, wallet


# ---- stored responses: the domain values as JSON -------------------------------------


def _plain(value: Any) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in dataclasses.asdict(value).items()
    }


def _times(data: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if data.get(name) is not None:
            data[name] = datetime.fromisoformat(data[name])
    return data


def _dump_entry(entry: Entry) -> str:
    return json.dumps(_plain(entry))


def _load_entry(raw: str) -> Entry:
    return Entry(**_times(json.loads(raw), "created_at"))


def _dump_hold(hold: Hold) -> str:
    return json.dumps(_plain(hold))


def _hold_from(data: dict[str, Any]) -> Hold:
    return Hold(**_times(data, "expires_at", "created_at", "resolved_at"))


def _load_hold(raw: str) -> Hold:
    return _hold_from(json.loads(raw))


def _dump_captured(captured: Captured) -> str:
    entry = None if captured.entry is None else _plain(captured.entry)
    return json.dumps({"hold": _plain(captured.hold), "entry": entry})


def _load_captured(raw: str) -> Captured:
    data = json.loads(raw)
    entry = None if data["entry"] is None else Entry(**_times(data["entry"], "created_at"))
    return Captured(_hold_from(data["hold"]), entry)
