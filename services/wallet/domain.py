"""The ledger's rules, with no I/O: what a wallet, a ledger row and a hold are, and
which changes are allowed. The store reads and writes these values; the use cases in
`ledger.py` ask the functions here what to write.

Invariants every function keeps (ARCHITECTURE rule 4):
  - credits are integers; every balance change is one ledger row (`Entry`) carrying
    the balance after it;
  - `0 <= held <= balance`, so `available = balance - held` is never negative;
  - a hold resolves once: open → captured | released | expired;
  - a capture charges at most the held amount and releases the rest;
  - `debt >= 0`, and a wallet in debt has nothing available (`debt > 0` implies
    `available == 0`): credits that become available pay the debt first;
  - spending (a hold, a transfer, an admin debit) is refused while debt remains;
  - the credits on the balance are held in lots (`Lot`): sum(remaining) == balance
    and sum(reserved) == held, every lot has 0 <= reserved <= remaining."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from kit.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound

# One operation moves at most this many credits, and no balance grows past
# MAX_BALANCE: far from int64's limit, so no sum of rows or wallets can overflow it.
MAX_AMOUNT = 10**12
MAX_BALANCE = 10**15
# Lengths the store's columns allow; longer values are refused before any I/O.
MAX_ID_LENGTH = 64
MAX_REFERENCE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 1000


class Kind(StrEnum):
    """Ledger row kinds (`Transaction.kind`)."""

    GRANT = "grant"
    SIGNUP_BONUS = "signup_bonus"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    CHARGE = "charge"
    REFUND = "refund"
    PURCHASE = "purchase"
    # An admin's debit (negative).
    DEBIT = "debit"
    # Credits of a refunded or disputed purchase taken back (negative, or 0 when
    # none were available: the shortfall is the row's `debt_change`).
    PURCHASE_REFUNDED = "purchase_refunded"
    PURCHASE_DISPUTED = "purchase_disputed"
    # Credits that paid (part of) the debt (negative; `debt_change` the same).
    DEBT_REPAID = "debt_repaid"
    # The unspent remainder of a lot past its `expires_at` (negative; the lot's id
    # as the reference).
    EXPIRY = "expiry"
    # A plan's allowance for one period (positive; a lot of bucket `allowance`
    # expiring at the period's end).
    ALLOWANCE = "allowance"


class HoldStatus(StrEnum):
    OPEN = "open"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"


class Change(StrEnum):
    """`WalletChanged.kind` for changes that write no ledger row."""

    HOLD_PLACED = "hold_placed"
    HOLD_RELEASED = "hold_released"
    HOLD_EXPIRED = "hold_expired"


@dataclass(frozen=True)
class Wallet:
    user_id: str
    balance: int
    held: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    # Credits owed: taken back (a refunded or disputed purchase) but already spent.
    debt: int = 0
    # The owner's low-balance threshold (0: no alert), and whether the alert of
    # the current crossing was sent (cleared once available is back at or above it).
    low_balance: int = 0
    low_balance_alerted: bool = False

    @property
    def available(self) -> int:
        return self.balance - self.held

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class Entry:
    """One ledger row (`Transaction` on the wire)."""

    id: str
    user_id: str
    kind: str
    amount: int  # signed: > 0 credits the balance, < 0 debits it; never 0
    balance_after: int
    reference: str
    description: str
    created_at: datetime
    # Signed change to the wallet's debt, and the debt right after the row.
    debt_change: int = 0
    debt_after: int = 0


@dataclass(frozen=True)
class Hold:
    id: str
    user_id: str
    amount: int
    status: str
    captured_amount: int
    expires_at: datetime
    created_at: datetime
    reference: str
    description: str
    resolved_at: datetime | None = None

    def expired_at(self, now: datetime) -> bool:
        return self.expires_at <= now


def new_entry(
    wallet: Wallet,
    kind: Kind,
    amount: int,
    reference: str,
    description: str,
    now: datetime,
    debt_change: int = 0,
) -> Entry:
    """The ledger row of a change that left `wallet` as it is."""
    if amount == 0 and debt_change == 0:
        raise AssertionError("a ledger row never moves 0 credits and 0 debt")
    return Entry(
        id=str(uuid.uuid4()),
        user_id=wallet.user_id,
        kind=kind,
        amount=amount,
        balance_after=wallet.balance,
        reference=reference,
        description=description,
        created_at=now,
        debt_change=debt_change,
        debt_after=wallet.debt,
    )


def new_hold(
    user_id: str,
    amount: int,
    expires_at: datetime,
    reference: str,
    description: str,
    now: datetime,
) -> Hold:
    return Hold(
        id=str(uuid.uuid4()),
        user_id=user_id,
        amount=amount,
        status=HoldStatus.OPEN,
        captured_amount=0,
        expires_at=expires_at,
        created_at=now,
        reference=reference,
        description=description,
    )


class Bucket(StrEnum):
    """Where a lot's credits came from (`Wallet.buckets`):
    - purchase: a credit pack paid;
    - allowance: a plan's credits for one period (expire at its end; cannot be
      transferred);
    - grant: an admin's grant (optionally expiring), credits received from
      another user (`transfer_in`, keeping the sender's expiry), a refunded
      charge (unless it was paid with allowance), the migrated balance;
    - bonus: the signup bonus."""

    PURCHASE = "purchase"
    ALLOWANCE = "allowance"
    GRANT = "grant"
    BONUS = "bonus"


# What a transfer may draw from: every bucket but the plan's allowance.
TRANSFERABLE = frozenset({Bucket.PURCHASE, Bucket.GRANT, Bucket.BONUS})


@dataclass(frozen=True)
class Lot:
    """One credit of the balance, in bulk: `amount` credited at once, `remaining`
    of it still on the balance, `reserved` of that held by open holds."""

    id: str
    user_id: str
    bucket: str
    amount: int
    remaining: int
    reserved: int
    expires_at: datetime | None
    reference: str  # the credit row's reference: the payment id of a purchase
    created_at: datetime
    seq: int = 0  # creation order (the store's; 0 until stored)

    @property
    def available(self) -> int:
        return self.remaining - self.reserved

    def expired_at(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Draw:
    """Credits a change took from (or a hold reserved from) one lot."""

    lot_id: str
    amount: int


@dataclass(frozen=True)
class CreditSummary:
    """The balance by bucket, and the next credits to expire (the unreserved
    remainder of the lots with the earliest `expires_at`)."""

    buckets: dict[str, int]
    next_expiry_amount: int = 0
    next_expiry_at: datetime | None = None


def new_lot(
    user_id: str,
    bucket: Bucket | str,
    amount: int,
    expires_at: datetime | None,
    reference: str,
    now: datetime,
) -> Lot:
    return Lot(
        id=str(uuid.uuid4()),
        user_id=user_id,
        bucket=Bucket(bucket),
        amount=amount,
        remaining=amount,
        reserved=0,
        expires_at=expires_at,
        reference=reference,
        created_at=now,
    )


def spend_order(lot: Lot) -> tuple[bool, datetime, int]:
    """The fair order lots are spent in: the one expiring first, then those that
    never expire; oldest first among equals."""
    return (lot.expires_at is None, lot.expires_at or lot.created_at, lot.seq)


def _take(
    lots: list[Lot], amount: int, choose: Callable[[Lot], int], apply: Callable[[Lot, int], Lot]
) -> tuple[list[Lot], list[Draw]]:
    """Take `amount` from `lots` in spend order, at most `choose(lot)` from each."""
    left = amount
    out: list[Lot] = []
    draws: list[Draw] = []
    for lot in sorted(lots, key=spend_order):
        part = min(left, max(choose(lot), 0))
        if part > 0:
            lot = apply(lot, part)
            draws.append(Draw(lot.id, part))
            left -= part
        out.append(lot)
    if left:
        raise AssertionError(f"lots short of {left} credits the wallet has")
    return out, draws


def draw(
    lots: list[Lot],
    amount: int,
    *,
    buckets: frozenset[Bucket] | None = None,
    first: Callable[[Lot], bool] | None = None,
) -> tuple[list[Lot], list[Draw]]:
    """Take `amount` off the lots' available (unreserved) credits in spend order,
    from `buckets` only when given; the lots `first` picks before any other (a
    purchase's own lot when it is taken back). Callers expire the lots that are
    due first (`due_lots`), so no expired credit is ever spent."""

    def usable(lot: Lot) -> int:
        return 0 if buckets is not None and lot.bucket not in buckets else lot.available

    def spend(lot: Lot, part: int) -> Lot:
        return replace(lot, remaining=lot.remaining - part)

    if first is None:
        return _take(lots, amount, usable, spend)
    head = [lot for lot in lots if first(lot)]
    rest = [lot for lot in lots if not first(lot)]
    from_head = min(amount, sum(usable(lot) for lot in head))
    head, drawn = _take(head, from_head, usable, spend)
    rest, more = _take(rest, amount - from_head, usable, spend)
    return head + rest, drawn + more


def reserve_lots(lots: list[Lot], amount: int) -> tuple[list[Lot], list[Draw]]:
    """A hold's reservation of `amount` from the lots' available credits, in spend
    order (as `draw`, the due lots expired first)."""

    def reserve(lot: Lot, part: int) -> Lot:
        return replace(lot, reserved=lot.reserved + part)

    return _take(lots, amount, lambda lot: lot.available, reserve)


def settle_hold(
    lots: list[Lot], reserved: list[Draw], charged: int
) -> tuple[list[Lot], list[Draw]]:
    """Resolve a hold's reservation: `charged` credits are consumed from its lots in
    spend order (even from a lot that expired meanwhile: the hold kept what it
    reserved), the rest goes back to the lots. Returns the lots and what was
    consumed from each."""
    by_id = {lot.id: lot for lot in lots}
    parts = sorted(reserved, key=lambda d: spend_order(by_id[d.lot_id]))
    left = charged
    consumed: list[Draw] = []
    for part in parts:
        lot = by_id[part.lot_id]
        used = min(left, part.amount)
        left -= used
        by_id[lot.id] = replace(
            lot, remaining=lot.remaining - used, reserved=lot.reserved - part.amount
        )
        if used:
            consumed.append(Draw(lot.id, used))
    if left:
        raise AssertionError(f"a hold charged {left} credits more than it reserved")
    return list(by_id.values()), consumed


def due_lots(lots: list[Lot], now: datetime) -> list[Lot]:
    """Lots past their expiry with an unreserved remainder (what expires now)."""
    return [lot for lot in lots if lot.expired_at(now) and lot.available > 0]


def expire_credits(wallet: Wallet, lot: Lot, now: datetime) -> tuple[Wallet, Lot]:
    """A due lot's unreserved remainder leaves the balance; a reserved part stays
    with its hold (and expires when the hold gives it back)."""
    gone = lot.available
    changed = replace(wallet, balance=wallet.balance - gone, updated_at=now)
    return check(changed), replace(lot, remaining=lot.reserved)


def transferable(lots: list[Lot]) -> int:
    return sum(lot.available for lot in lots if lot.bucket in TRANSFERABLE)


def require_transferable(lots: list[Lot], amount: int) -> None:
    """INSUFFICIENT_TRANSFERABLE_CREDITS when the available credits that may be
    transferred (all but the plan's allowance) are fewer than `amount`."""
    can = transferable(lots)
    if amount > can:
        raise FailedPrecondition(
            "INSUFFICIENT_TRANSFERABLE_CREDITS",
            f"need {amount} transferable credits, {can} available "
            "(a plan's allowance cannot be transferred)",
            details={"required": amount, "transferable": can},
        )


def summarize(lots: list[Lot]) -> CreditSummary:
    buckets = {bucket.value: 0 for bucket in Bucket}
    for lot in lots:
        buckets[lot.bucket] = buckets.get(lot.bucket, 0) + lot.remaining
    expiring = [lot for lot in lots if lot.expires_at is not None and lot.available > 0]
    if not expiring:
        return CreditSummary(buckets)
    at = min(lot.expires_at for lot in expiring if lot.expires_at is not None)
    amount = sum(lot.available for lot in expiring if lot.expires_at == at)
    return CreditSummary(buckets, amount, at)


def refund_bucket(buckets: set[str]) -> Bucket:
    """The bucket of a refunded charge's new lot: allowance when any of the charge
    was paid with allowance (a refund never makes allowance transferable), else
    grant."""
    return Bucket.ALLOWANCE if Bucket.ALLOWANCE in buckets else Bucket.GRANT


def require_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    """An optional expiry a request may carry: in the future when given."""
    return None if expires_at is None else require_future(expires_at, now)


# ---- validation of requests -----------------------------------------------------------


def require_amount(amount: int, *, allow_zero: bool = False) -> int:
    """A credit amount a request may carry: > 0 (>= 0 with `allow_zero`), at most
    MAX_AMOUNT. INVALID_AMOUNT otherwise."""
    low = 0 if allow_zero else 1
    if not low <= amount <= MAX_AMOUNT:
        bound = "not negative" if allow_zero else "positive"
        raise InvalidArgument(
            "INVALID_AMOUNT",
            f"amount must be {bound} and at most {MAX_AMOUNT}, got {amount}",
            details={"amount": amount},
        )
    return amount


def require_text(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(
            "INVALID_ARGUMENT",
            f"{field} is longer than {limit} characters",
            details={"field": field},
        )
    return value


def require_user_id(user_id: str, field: str) -> str:
    if not user_id:
        raise InvalidArgument("INVALID_ARGUMENT", f"{field} is required", details={"field": field})
    return user_id


def require_reason(reason: str) -> str:
    """An admin's reason for an action: required (it is the audit), at most 1000
    characters."""
    if not reason.strip():
        raise InvalidArgument("INVALID_ARGUMENT", "reason is required", details={"field": "reason"})
    return require_text(reason, "reason", MAX_DESCRIPTION_LENGTH)


def refuse_self_transfer(sender: str, recipient: str) -> None:
    if sender == recipient:
        raise InvalidArgument("SELF_TRANSFER", "cannot transfer credits to yourself")


def plausible_id(value: str) -> bool:
    """An id the store could hold; anything else cannot name an existing row."""
    return 0 < len(value) <= MAX_ID_LENGTH


def wallet_not_found(user_id: str, whose: str = "the user") -> NotFound:
    return NotFound("WALLET_NOT_FOUND", f"{whose} has no open wallet", details={"user_id": user_id})


def hold_not_found(hold_id: str) -> NotFound:
    return NotFound("HOLD_NOT_FOUND", "no hold has this id", details={"hold_id": hold_id})


def require_open(wallet: Wallet | None, user_id: str, whose: str = "the user") -> Wallet:
    """The wallet, if it exists and is not closed; WALLET_NOT_FOUND otherwise."""
    if wallet is None or not wallet.is_open:
        raise wallet_not_found(user_id, whose)
    return wallet


def require_future(expires_at: datetime, now: datetime) -> datetime:
    if expires_at <= now:
        raise InvalidArgument(
            "INVALID_ARGUMENT", "expires_at must be in the future", details={"field": "expires_at"}
        )
    return expires_at


# ---- balance changes ----------------------------------------------------------------------


def insufficient(wallet: Wallet, required: int) -> FailedPrecondition:
    return FailedPrecondition(
        "INSUFFICIENT_CREDITS",
        f"need {required} credits, {wallet.available} available",
        details={"required": required, "available": wallet.available},
    )


def credit(wallet: Wallet, amount: int, now: datetime) -> Wallet:
    """`amount` (> 0) more on the balance."""
    if wallet.balance + amount > MAX_BALANCE:
        raise InvalidArgument(
            "INVALID_AMOUNT",
            f"the balance would exceed {MAX_BALANCE} credits",
            details={"amount": amount},
        )
    return replace(wallet, balance=wallet.balance + amount, updated_at=now)


def in_debt(wallet: Wallet) -> FailedPrecondition:
    return FailedPrecondition(
        "WALLET_IN_DEBT",
        f"the wallet owes {wallet.debt} credits (a refunded or disputed purchase); "
        "nothing can be spent until a purchase pays the debt",
        details={"debt": wallet.debt},
    )


def refuse_in_debt(wallet: Wallet) -> Wallet:
    """Spending is refused while the wallet owes credits: WALLET_IN_DEBT."""
    if wallet.debt > 0:
        raise in_debt(wallet)
    return wallet


def debit(wallet: Wallet, amount: int, now: datetime) -> Wallet:
    """`amount` (> 0) off the balance, out of the available credits only; refused
    while the wallet is in debt."""
    refuse_in_debt(wallet)
    if amount > wallet.available:
        raise insufficient(wallet, amount)
    return replace(wallet, balance=wallet.balance - amount, updated_at=now)


def reserve(wallet: Wallet, amount: int, now: datetime) -> Wallet:
    """Hold `amount` (> 0) of the available credits; refused while in debt."""
    refuse_in_debt(wallet)
    if amount > wallet.available:
        raise insufficient(wallet, amount)
    return replace(wallet, held=wallet.held + amount, updated_at=now)


def check(wallet: Wallet) -> Wallet:
    """The invariants the database also enforces (CHECK constraints): 0 <= held <=
    balance, debt >= 0."""
    if not 0 <= wallet.held <= wallet.balance or wallet.debt < 0:
        raise AssertionError(f"wallet {wallet.user_id} would break 0 <= held <= balance")
    return wallet


# ---- debt and the low-balance alert ------------------------------------------------


@dataclass(frozen=True)
class TakeBack:
    """Taking `credits` back out of a wallet: `taken` come off the balance (what was
    available), the rest is owed (`owed`, added to the debt)."""

    wallet: Wallet
    taken: int
    owed: int


def take_back(wallet: Wallet, credits: int, now: datetime) -> TakeBack:
    """Take `credits` (> 0) back: what is available comes off the balance at once
    (credits held for running jobs stay held), the shortfall becomes debt."""
    taken = min(credits, wallet.available)
    owed = credits - taken
    changed = replace(
        wallet, balance=wallet.balance - taken, debt=wallet.debt + owed, updated_at=now
    )
    return TakeBack(check(changed), taken, owed)


def repay(wallet: Wallet, now: datetime) -> tuple[Wallet, int]:
    """The wallet after its available credits paid as much of its debt as they can,
    and how much they paid (0 when it owes nothing or has nothing available)."""
    paid = min(wallet.debt, wallet.available)
    if paid <= 0:
        return wallet, 0
    changed = replace(
        wallet, balance=wallet.balance - paid, debt=wallet.debt - paid, updated_at=now
    )
    return check(changed), paid


def require_threshold(threshold: int) -> int:
    if not 0 <= threshold <= MAX_BALANCE:
        raise InvalidArgument(
            "INVALID_THRESHOLD",
            f"low_balance must be between 0 and {MAX_BALANCE}, got {threshold}",
            details={"low_balance": threshold},
        )
    return threshold


def is_low(wallet: Wallet) -> bool:
    return wallet.low_balance > 0 and wallet.available < wallet.low_balance


def set_low_balance(wallet: Wallet, threshold: int) -> Wallet:
    """A new threshold. Setting one the wallet is already below counts as that
    crossing (no alert now; the next one, after available is back at or above it)."""
    return replace(
        wallet,
        low_balance=threshold,
        low_balance_alerted=threshold > 0 and wallet.available < threshold,
    )


def watch_low_balance(wallet: Wallet) -> tuple[Wallet, bool]:
    """The wallet after a change, with its alert state, and whether the change just
    crossed the threshold downward (the alert to send, once per crossing): the
    alert is armed while available is at or above the threshold."""
    low = is_low(wallet)
    if low and not wallet.low_balance_alerted:
        return replace(wallet, low_balance_alerted=True), True
    if not low and wallet.low_balance_alerted:
        return replace(wallet, low_balance_alerted=False), False
    return wallet, False


# ---- the hold state machine -------------------------------------------------------------


class HoldExpired(FailedPrecondition):
    """Capturing a hold that passed its expiry. `expire_now` says the hold is still
    `open` in the store: the caller records the expiry before refusing."""

    def __init__(self, hold: Hold, *, expire_now: bool) -> None:
        super().__init__(
            "HOLD_EXPIRED",
            "the hold expired and its credits were released",
            details={"hold_id": hold.id},
        )
        self.expire_now = expire_now


def _refuse_resolved(hold: Hold, action: str) -> DomainError:
    if hold.status == HoldStatus.CAPTURED:
        return FailedPrecondition(
            "HOLD_ALREADY_CAPTURED",
            f"cannot {action} a hold that was captured",
            details={"hold_id": hold.id},
        )
    if hold.status == HoldStatus.RELEASED:
        return FailedPrecondition(
            "HOLD_ALREADY_RELEASED",
            f"cannot {action} a hold that was released",
            details={"hold_id": hold.id},
        )
    return HoldExpired(hold, expire_now=False)


@dataclass(frozen=True)
class Resolution:
    """What resolving an open hold does: its new state, what it charges (a ledger
    row when > 0) and what it frees from `held`."""

    hold: Hold
    wallet: Wallet
    charged: int
    freed: int


def capture(hold: Hold, wallet: Wallet, amount: int, now: datetime) -> Resolution:
    """Charge min(amount, hold.amount) and release the rest. Refuses a hold that is
    resolved already, or past its expiry (HoldExpired)."""
    if hold.status != HoldStatus.OPEN:
        raise _refuse_resolved(hold, "capture")
    if hold.expired_at(now):
        raise HoldExpired(hold, expire_now=True)
    charged = min(amount, hold.amount)
    changed = replace(
        wallet,
        balance=wallet.balance - charged,
        held=wallet.held - hold.amount,
        updated_at=now,
    )
    resolved = replace(hold, status=HoldStatus.CAPTURED, captured_amount=charged, resolved_at=now)
    return Resolution(resolved, check(changed), charged, hold.amount)


def release(hold: Hold, wallet: Wallet, now: datetime) -> Resolution | None:
    """Give an open hold's credits back; None when nothing is left to release (it was
    released or expired before). An open hold past its expiry becomes `expired`."""
    if hold.status == HoldStatus.CAPTURED:
        raise _refuse_resolved(hold, "release")
    if hold.status != HoldStatus.OPEN:
        return None
    status = HoldStatus.EXPIRED if hold.expired_at(now) else HoldStatus.RELEASED
    return _free(hold, wallet, status, now)


def expire(hold: Hold, wallet: Wallet, now: datetime) -> Resolution | None:
    """The sweeper's transition: an open hold past its expiry frees its credits."""
    if hold.status != HoldStatus.OPEN or not hold.expired_at(now):
        return None
    return _free(hold, wallet, HoldStatus.EXPIRED, now)


def close_release(hold: Hold, wallet: Wallet, now: datetime) -> Resolution:
    """Closing a wallet releases its open holds: nothing is charged to a deleted user."""
    return _free(hold, wallet, HoldStatus.RELEASED, now)


def _free(hold: Hold, wallet: Wallet, status: HoldStatus, now: datetime) -> Resolution:
    changed = replace(wallet, held=wallet.held - hold.amount, updated_at=now)
    return Resolution(replace(hold, status=status, resolved_at=now), check(changed), 0, hold.amount)


# ---- credit packs and their payments ---------------------------------------------------


@dataclass(frozen=True)
class CreditPack:
    id: str
    credits: int
    price: int  # in the currency's smallest unit
    currency: str


def parse_packs(spec: str, currency: str) -> tuple[CreditPack, ...]:
    """`id:credits:price,…` (KLIK_CREDIT_PACKS) as packs, cheapest first."""
    packs: dict[str, CreditPack] = {}
    for raw in spec.split(","):
        if not raw.strip():
            continue
        parts = [p.strip() for p in raw.split(":")]
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
            raise ValueError(f"{raw.strip()!r} is not id:credits:price")
        pack = CreditPack(parts[0], int(parts[1]), int(parts[2]), currency)
        if not 0 < pack.credits <= MAX_AMOUNT or pack.price <= 0 or pack.id in packs:
            raise ValueError(f"{raw.strip()!r}: credits and price must be positive, ids unique")
        packs[pack.id] = pack
    return tuple(sorted(packs.values(), key=lambda p: (p.price, p.id)))


def find_pack(packs: tuple[CreditPack, ...], pack_id: str) -> CreditPack:
    for pack in packs:
        if pack.id == pack_id:
            return pack
    raise NotFound("PACK_NOT_FOUND", "no credit pack has this id", details={"pack_id": pack_id})


def require_return_url(url: str, field: str, origins: tuple[str, ...]) -> str:
    """A Checkout return URL on one of the allowed origins; INVALID_RETURN_URL otherwise."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if parts.scheme not in ("http", "https") or origin not in {o.lower() for o in origins}:
        raise InvalidArgument(
            "INVALID_RETURN_URL",
            f"{field} must be on an allowed origin",
            details={"field": field},
        )
    return url


class PaymentStatus(StrEnum):
    OPEN = "open"  # the session waits for the person (or for its payment to settle)
    PAID = "paid"  # the credits are granted
    EXPIRED = "expired"  # the person cancelled, or the session expired


@dataclass(frozen=True)
class Payment:
    """A Checkout Session klik started: the credits it grants once paid."""

    id: str  # the Checkout Session id
    user_id: str
    pack_id: str
    credits: int
    amount: int
    currency: str
    status: str
    created_at: datetime
    paid_at: datetime | None = None
    payment_intent: str = ""
    # What Stripe reported refunded and disputed of `amount` (minor units), the
    # charge's receipt, and the credits taken back so far for both.
    refunded_amount: int = 0
    disputed_amount: int = 0
    dispute_id: str = ""
    receipt_url: str = ""
    credits_reversed: int = 0

    @property
    def display_status(self) -> str:
        """`Payment.status` on the wire: open, paid, expired, partially_refunded,
        refunded or disputed."""
        if self.status != PaymentStatus.PAID:
            return self.status
        if self.dispute_id:
            return "disputed"
        if self.refunded_amount >= self.amount > 0:
            return "refunded"
        return "partially_refunded" if self.refunded_amount > 0 else "paid"


def credits_to_reverse(payment: Payment) -> int:
    """Credits of `payment` still to take back for what Stripe reported refunded or
    disputed: its credits in proportion to the money returned (rounded down; all of
    them once all the money is), less what was taken back already. Computed from
    Stripe's running totals, so a repeated or late event takes back nothing more."""
    returned = min(payment.amount, payment.refunded_amount + payment.disputed_amount)
    if payment.amount <= 0 or returned >= payment.amount:
        due = payment.credits
    else:
        due = payment.credits * returned // payment.amount
    return max(0, due - payment.credits_reversed)


def refundable(payment: Payment) -> int:
    """Money (minor units) of `payment` that can still be refunded; refuses a payment
    that cannot be: not paid, disputed, or refunded in full."""
    if payment.status != PaymentStatus.PAID or not payment.payment_intent:
        raise FailedPrecondition(
            "PAYMENT_NOT_PAID",
            "only a paid payment can be refunded",
            details={"payment_id": payment.id},
        )
    if payment.dispute_id:
        raise FailedPrecondition(
            "PAYMENT_DISPUTED",
            "a disputed payment is settled through the dispute, not refunded",
            details={"payment_id": payment.id},
        )
    left = payment.amount - payment.refunded_amount
    if left <= 0:
        raise FailedPrecondition(
            "PAYMENT_ALREADY_REFUNDED",
            "the payment was refunded in full",
            details={"payment_id": payment.id},
        )
    return left


def refund_too_large(payment: Payment, amount: int, left: int) -> InvalidArgument:
    return InvalidArgument(
        "INVALID_AMOUNT",
        f"only {left} of the payment is left to refund, not {amount}",
        details={"payment_id": payment.id, "amount": amount, "refundable": left},
    )


def payment_not_found(payment_id: str) -> NotFound:
    return NotFound(
        "PAYMENT_NOT_FOUND", "no payment has this id", details={"payment_id": payment_id}
    )


def charge_already_refunded(transaction_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "CHARGE_ALREADY_REFUNDED",
        "this charge was refunded already",
        details={"transaction_id": transaction_id},
    )


def charge_not_found(transaction_id: str) -> NotFound:
    return NotFound(
        "CHARGE_NOT_FOUND",
        "the user has no charge with this transaction id",
        details={"transaction_id": transaction_id},
    )


# ---- plans and subscriptions ------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A subscription plan on sale (`KLIK_PLANS`)."""

    id: str
    price_id: str  # the Stripe Price (recurring, monthly) subscribers pay
    allowance: int  # credits granted each paid period; they expire at its end
    premium: bool  # subscribers get the role `premium` (premium models, rate limits)


def parse_plans(spec: str) -> tuple[Plan, ...]:
    """`id:price_id:allowance[:premium],…` (KLIK_PLANS) as plans, in the given order."""
    plans: dict[str, Plan] = {}
    for raw in spec.split(","):
        if not raw.strip():
            continue
        parts = [p.strip() for p in raw.split(":")]
        perks = parts[3:]
        if (
            len(parts) < 3
            or not parts[0]
            or not parts[1]
            or not parts[2].isdigit()
            or any(perk != "premium" for perk in perks)
        ):
            raise ValueError(f"{raw.strip()!r} is not id:price_id:allowance[:premium]")
        plan = Plan(parts[0], parts[1], int(parts[2]), "premium" in perks)
        if not 0 < plan.allowance <= MAX_AMOUNT or plan.id in plans:
            raise ValueError(f"{raw.strip()!r}: the allowance must be positive, ids unique")
        if len(plan.id) > MAX_ID_LENGTH:
            raise ValueError(f"{raw.strip()!r}: the id is longer than {MAX_ID_LENGTH}")
        plans[plan.id] = plan
    return tuple(plans.values())


def find_plan(plans: tuple[Plan, ...], plan_id: str) -> Plan:
    for plan in plans:
        if plan.id == plan_id:
            return plan
    raise NotFound("PLAN_NOT_FOUND", "no plan has this id", details={"plan_id": plan_id})


class SubscriptionStatus(StrEnum):
    """Stripe's subscription statuses klik tells apart."""

    INCOMPLETE = "incomplete"  # checked out, the first invoice not paid yet
    ACTIVE = "active"
    TRIALING = "trialing"
    PAST_DUE = "past_due"  # a renewal's invoice failed; Stripe retries it
    UNPAID = "unpaid"
    CANCELED = "canceled"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    PAUSED = "paused"


def subscription_status(raw: str) -> str:
    """Stripe's status as klik keeps it (an unknown one is kept as `incomplete`)."""
    return raw if raw in set(SubscriptionStatus) else SubscriptionStatus.INCOMPLETE


@dataclass(frozen=True)
class Subscription:
    """A user's Stripe subscription to a plan, as the webhooks last reported it."""

    id: str  # Stripe's subscription id
    user_id: str
    plan_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    # Bumped on every change: `wallet.plan_changed` carries it, so a consumer can
    # ignore an older event delivered after a newer one.
    version: int = 0

    @property
    def active(self) -> bool:
        """In force: paid (or trialing) and not ended."""
        return self.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)


def no_subscription() -> NotFound:
    return NotFound("SUBSCRIPTION_NOT_FOUND", "you have no subscription")


def no_billing_account() -> FailedPrecondition:
    return FailedPrecondition(
        "NO_BILLING_ACCOUNT", "you have not checked out with Stripe yet: nothing to manage"
    )
