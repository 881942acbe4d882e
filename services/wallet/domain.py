"""The ledger's rules, with no I/O: what a wallet, a ledger row and a hold are, and
which changes are allowed. The store reads and writes these values; the use cases in
`ledger.py` ask the functions here what to write.

Invariants every function keeps (ARCHITECTURE rule 4):
  - credits are integers; every balance change is one ledger row (`Entry`) carrying
    the balance after it;
  - `0 <= held <= balance`, so `available = balance - held` is never negative;
  - a hold resolves once: open → captured | released | expired;
  - a capture charges at most the held amount and releases the rest."""

from __future__ import annotations

import uuid
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
    wallet: Wallet, kind: Kind, amount: int, reference: str, description: str, now: datetime
) -> Entry:
    """The ledger row of a change that left `wallet` as it is."""
    if amount == 0:
        raise AssertionError("a ledger row never moves 0 credits")
    return Entry(
        id=str(uuid.uuid4()),
        user_id=wallet.user_id,
        kind=kind,
        amount=amount,
        balance_after=wallet.balance,
        reference=reference,
        description=description,
        created_at=now,
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


def debit(wallet: Wallet, amount: int, now: datetime) -> Wallet:
    """`amount` (> 0) off the balance, out of the available credits only."""
    if amount > wallet.available:
        raise insufficient(wallet, amount)
    return replace(wallet, balance=wallet.balance - amount, updated_at=now)


def reserve(wallet: Wallet, amount: int, now: datetime) -> Wallet:
    """Hold `amount` (> 0) of the available credits."""
    if amount > wallet.available:
        raise insufficient(wallet, amount)
    return replace(wallet, held=wallet.held + amount, updated_at=now)


def check(wallet: Wallet) -> Wallet:
    """The invariant the database also enforces (CHECK constraints): 0 <= held <= balance."""
    if not 0 <= wallet.held <= wallet.balance:
        raise AssertionError(f"wallet {wallet.user_id} would break 0 <= held <= balance")
    return wallet


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
