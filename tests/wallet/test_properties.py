"""Property-based: random sequences of grants (some expiring), plan allowances,
holds, captures, releases, transfers, hold and lot expiries, replays and reused
keys, admin debits, charge refunds and purchases taken back (a refund or dispute,
leaving debt when the credits were spent), run in-process against the ledger on
the test database, agree step by step with a tiny model of the rules (down to
what is left in each bucket) and leave the books balanced: for every wallet
balance == sum(ledger) == sum(lot remaining), held == sum(open holds) ==
sum(lot reserved), available >= 0, debt == sum(debt changes), a wallet in debt
has nothing available, and credits are conserved except by grants, bonuses,
allowances, captures, debits, refunds, expiries and what is taken back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from kit import db
from kit.errors import DomainError
from services.wallet import store
from services.wallet.changes import credit_wallet, take_back
from services.wallet.domain import Bucket, Kind
from services.wallet.events import open_wallet
from services.wallet.ledger import Ledger
from tests.wallet.support import books

WALLETS = 3
BONUS = 100
GENERATION = "service:generation"
ADMIN = "admin-1"


@dataclass(frozen=True)
class Grant:
    wallet: int
    amount: int


@dataclass(frozen=True)
class GrantExpiring:
    wallet: int
    amount: int
    ttl: int  # seconds until the granted lot expires


@dataclass(frozen=True)
class Allowance:
    wallet: int
    amount: int
    ttl: int  # seconds until the period ends


@dataclass(frozen=True)
class Transfer:
    sender: int
    recipient: int
    amount: int


@dataclass(frozen=True)
class Place:
    wallet: int
    amount: int
    ttl: int  # seconds until it expires


@dataclass(frozen=True)
class Capture:
    hold: int  # index into the holds placed so far
    amount: int


@dataclass(frozen=True)
class Release:
    hold: int


@dataclass(frozen=True)
class Tick:
    seconds: int  # the clock moves on, then the sweeper runs


@dataclass(frozen=True)
class TakeBack:
    wallet: int
    credits: int  # a refunded or disputed purchase's credits


@dataclass(frozen=True)
class Debit:
    wallet: int
    amount: int


@dataclass(frozen=True)
class RefundCharge:
    charge: int  # index into the charges captured so far


@dataclass(frozen=True)
class Replay:
    step: int  # index into the requests that succeeded: sent again, same key


@dataclass(frozen=True)
class Reuse:
    step: int  # the same key with another request


wallet_index = st.integers(0, WALLETS - 1)
operations = st.one_of(
    st.builds(Grant, wallet_index, st.integers(1, 200)),
    st.builds(GrantExpiring, wallet_index, st.integers(1, 200), st.integers(1, 90)),
    st.builds(Allowance, wallet_index, st.integers(1, 200), st.integers(1, 90)),
    st.builds(Transfer, wallet_index, wallet_index, st.integers(0, 250)),
    st.builds(Place, wallet_index, st.integers(1, 250), st.integers(1, 90)),
    st.builds(Capture, st.integers(0, 20), st.integers(0, 300)),
    st.builds(Release, st.integers(0, 20)),
    st.builds(Tick, st.integers(0, 60)),
    st.builds(TakeBack, wallet_index, st.integers(1, 300)),
    st.builds(Debit, wallet_index, st.integers(1, 150)),
    st.builds(RefundCharge, st.integers(0, 20)),
    st.builds(Replay, st.integers(0, 50)),
    st.builds(Reuse, st.integers(0, 50)),
)


@dataclass
class ModelLot:
    seq: int  # creation order
    bucket: str
    expires_at: datetime | None
    remaining: int
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.remaining - self.reserved

    def order(self) -> tuple[bool, datetime, int]:
        """Spend the one expiring first, then those that never expire, oldest first."""
        return (
            self.expires_at is None,
            self.expires_at or datetime.min.replace(tzinfo=UTC),
            self.seq,
        )


@dataclass
class ModelHold:
    id: str
    wallet: int
    amount: int
    expires_at: datetime
    status: str = "open"
    # (lot, credits) the hold reserved of each.
    parts: list[tuple[ModelLot, int]] = field(default_factory=list)


@dataclass
class Model:
    """The rules, as plainly as they can be written."""

    balance: list[int] = field(default_factory=lambda: [BONUS] * WALLETS)
    held: list[int] = field(default_factory=lambda: [0] * WALLETS)
    debt: list[int] = field(default_factory=lambda: [0] * WALLETS)
    lots: list[list[ModelLot]] = field(
        default_factory=lambda: [[ModelLot(-1, "bonus", None, BONUS)] for _ in range(WALLETS)]
    )
    holds: list[ModelHold] = field(default_factory=list)
    # (wallet, charge row id, credits, refunded yet, buckets it was paid from)
    charges: list[list[Any]] = field(default_factory=list)
    charged: int = 0
    minted: int = BONUS * WALLETS
    made: int = 0  # lots created so far

    def available(self, wallet: int) -> int:
        return self.balance[wallet] - self.held[wallet]

    def credit(
        self, wallet: int, amount: int, bucket: str, expires_at: datetime | None = None
    ) -> None:
        self.balance[wallet] += amount
        self.made += 1
        self.lots[wallet].append(ModelLot(self.made, bucket, expires_at, amount))

    def draw(
        self, wallet: int, amount: int, buckets: tuple[str, ...] = ()
    ) -> list[tuple[ModelLot, int]]:
        """Take `amount` off the wallet's available lots in spend order."""
        taken: list[tuple[ModelLot, int]] = []
        for lot in sorted(self.lots[wallet], key=ModelLot.order):
            if buckets and lot.bucket not in buckets:
                continue
            part = min(amount, lot.available)
            if part > 0:
                lot.remaining -= part
                amount -= part
                taken.append((lot, part))
        assert amount == 0
        self.balance[wallet] -= sum(part for _, part in taken)
        return taken

    def due(self, wallet: int, now: datetime) -> int:
        return sum(
            lot.available
            for lot in self.lots[wallet]
            if lot.expires_at is not None and lot.expires_at <= now
        )

    def expire(self, wallet: int, now: datetime) -> None:
        """Lots past their expiry lose their unreserved remainder."""
        for lot in self.lots[wallet]:
            if lot.expires_at is not None and lot.expires_at <= now and lot.available > 0:
                self.balance[wallet] -= lot.available
                self.minted -= lot.available
                lot.remaining = lot.reserved

    def transferable(self, wallet: int, now: datetime) -> int:
        return sum(
            lot.available
            for lot in self.lots[wallet]
            if lot.bucket != "allowance" and not (lot.expires_at and lot.expires_at <= now)
        )

    def free(self, hold: ModelHold, status: str, now: datetime, charge: int = 0) -> list[str]:
        """Resolve a hold: `charge` consumed from its lots in spend order, the rest
        back to them, then debt repaid and what went back to expired lots expired.
        Returns the buckets the charge was paid from."""
        self.held[hold.wallet] -= hold.amount
        hold.status = status
        paid_from: list[str] = []
        for lot, part in sorted(hold.parts, key=lambda p: p[0].order()):
            used = min(charge, part)
            charge -= used
            lot.reserved -= part
            lot.remaining -= used
            if used:
                paid_from.append(lot.bucket)
        self.settle_one(hold.wallet)
        self.expire(hold.wallet, now)
        return paid_from

    def settle_one(self, wallet: int) -> None:
        paid = min(self.debt[wallet], self.available(wallet))
        if paid > 0:
            self.draw(wallet, paid)
            self.debt[wallet] -= paid
            self.minted -= paid

    def settle(self) -> None:
        """Credits available to a wallet in debt pay it."""
        for wallet in range(WALLETS):
            self.settle_one(wallet)

    def spend_refusal(self, wallet: int, amount: int, now: datetime) -> str | None:
        if self.debt[wallet]:
            return "WALLET_IN_DEBT"
        if amount > self.available(wallet) - self.due(wallet, now):
            return "INSUFFICIENT_CREDITS"
        return None

    def buckets(self, wallet: int) -> dict[str, int]:
        found: dict[str, int] = {}
        for lot in self.lots[wallet]:
            found[lot.bucket] = found.get(lot.bucket, 0) + lot.remaining
        return found


@dataclass(frozen=True)
class Sent:
    """A request that succeeded, with what it returned."""

    call: str
    scope: str
    key: str
    kwargs: dict[str, Any]
    result: Any


async def reason(call: Any) -> str:
    try:
        await call
    except DomainError as error:
        return error.reason
    return "ok"


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(operations, min_size=5, max_size=40))
async def test_random_ledger_histories_keep_the_books(
    engine: AsyncEngine, steps: list[Any]
) -> None:
    users = [str(uuid.uuid4()) for _ in range(WALLETS)]
    clock = [datetime.now(UTC)]
    ledger = Ledger(db.UnitOfWork(db.session_factory(engine)), clock=lambda: clock[0])
    async with db.session_factory(engine)() as session, session.begin():
        for user_id in users:
            assert await open_wallet(session, user_id, BONUS, clock[0])
    model = Model()
    sent: list[Sent] = []
    run = uuid.uuid4().hex  # examples share the database (and the callers' key scopes)

    for n, step in enumerate(steps):
        key = f"{run}-{n}"
        kwargs: dict[str, Any]
        if isinstance(step, Grant):
            kwargs = {
                "user_id": users[step.wallet],
                "amount": step.amount,
                "reason": "r",
            }
            entry = await ledger.grant(ADMIN, key, granted_by=ADMIN, **kwargs)
            model.credit(step.wallet, step.amount, "grant")
            model.minted += step.amount
            assert entry.balance_after == model.balance[step.wallet]
            sent.append(Sent("grant", ADMIN, key, {"granted_by": ADMIN, **kwargs}, entry))

        elif isinstance(step, GrantExpiring):
            expiry = clock[0] + timedelta(seconds=step.ttl)
            kwargs = {
                "user_id": users[step.wallet],
                "amount": step.amount,
                "reason": "r",
                "expires_at": expiry,
            }
            entry = await ledger.grant(ADMIN, key, granted_by=ADMIN, **kwargs)
            model.credit(step.wallet, step.amount, "grant", expiry)
            model.minted += step.amount
            assert entry.balance_after == model.balance[step.wallet]
            sent.append(Sent("grant", ADMIN, key, {"granted_by": ADMIN, **kwargs}, entry))

        elif isinstance(step, Allowance):
            # What a plan's invoice.paid does (the subscriptions' use of credit_wallet).
            expiry = clock[0] + timedelta(seconds=step.ttl)
            async with db.session_factory(engine)() as session, session.begin():
                wallet = await store.lock_wallet(session, users[step.wallet])
                assert wallet is not None
                _, entry = await credit_wallet(
                    session,
                    wallet,
                    step.amount,
                    clock[0],
                    kind=Kind.ALLOWANCE,
                    bucket=Bucket.ALLOWANCE,
                    expires_at=expiry,
                    reference=f"in_{key}",
                )
            model.credit(step.wallet, step.amount, "allowance", expiry)
            model.minted += step.amount
            assert entry.balance_after == model.balance[step.wallet]

        elif isinstance(step, Transfer):
            sender, recipient = users[step.sender], users[step.recipient]
            kwargs = {
                "sender": sender,
                "recipient": recipient,
                "amount": step.amount,
                "note": "",
            }
            if step.amount <= 0:
                expected = "INVALID_AMOUNT"
            elif step.sender == step.recipient:
                expected = "SELF_TRANSFER"
            elif refused := model.spend_refusal(step.sender, step.amount, clock[0]):
                expected = refused
            elif step.amount > model.transferable(step.sender, clock[0]):
                expected = "INSUFFICIENT_TRANSFERABLE_CREDITS"
            else:
                expected = "ok"
            if expected != "ok":
                assert await reason(ledger.transfer(sender, key, **kwargs)) == expected
                continue
            entry = await ledger.transfer(sender, key, **kwargs)
            model.expire(step.sender, clock[0])
            sent_lots = model.draw(step.sender, step.amount, ("purchase", "grant", "bonus"))
            for lot, part in sent_lots:
                model.credit(step.recipient, part, "grant", lot.expires_at)
            assert (entry.amount, entry.balance_after) == (-step.amount, model.balance[step.sender])
            sent.append(Sent("transfer", sender, key, kwargs, entry))

        elif isinstance(step, Place):
            expires_at = clock[0] + timedelta(seconds=step.ttl)
            kwargs = {
                "user_id": users[step.wallet],
                "amount": step.amount,
                "expires_at": expires_at,
            }
            refusal = model.spend_refusal(step.wallet, step.amount, clock[0])
            if refusal is not None:
                outcome = await reason(ledger.place_hold(GENERATION, key, **kwargs))
                assert outcome == refusal
                continue
            hold = await ledger.place_hold(GENERATION, key, **kwargs)
            model.expire(step.wallet, clock[0])
            placed = ModelHold(hold.id, step.wallet, step.amount, expires_at)
            left = step.amount
            for lot in sorted(model.lots[step.wallet], key=ModelLot.order):
                part = min(left, lot.available)
                if part > 0:
                    lot.reserved += part
                    left -= part
                    placed.parts.append((lot, part))
            model.held[step.wallet] += step.amount
            model.holds.append(placed)
            sent.append(Sent("place_hold", GENERATION, key, kwargs, hold))

        elif isinstance(step, Capture | Release):
            if not model.holds:
                continue
            target = model.holds[step.hold % len(model.holds)]
            expired = target.status == "open" and target.expires_at <= clock[0]
            if isinstance(step, Capture):
                kwargs = {"hold_id": target.id, "amount": step.amount}
                if target.status != "open" or expired:
                    expected = {
                        "captured": "HOLD_ALREADY_CAPTURED",
                        "released": "HOLD_ALREADY_RELEASED",
                    }.get(target.status, "HOLD_EXPIRED")
                    outcome = await reason(ledger.capture_hold(GENERATION, key, **kwargs))
                    assert outcome == expected
                    if expired:
                        # The refusal records the expiry.
                        model.free(target, "expired", clock[0])
                    continue
                captured = await ledger.capture_hold(GENERATION, key, **kwargs)
                charge = min(step.amount, target.amount)
                model.balance[target.wallet] -= charge
                paid_from = model.free(target, "captured", clock[0], charge)
                model.charged += charge
                assert captured.hold.captured_amount == charge
                assert (captured.entry is None) == (charge == 0)
                if captured.entry is not None:
                    model.charges.append(
                        [target.wallet, captured.entry.id, charge, False, paid_from]
                    )
                sent.append(Sent("capture_hold", GENERATION, key, kwargs, captured))
            else:
                kwargs = {"hold_id": target.id}
                if target.status == "captured":
                    outcome = await reason(ledger.release_hold(GENERATION, key, **kwargs))
                    assert outcome == "HOLD_ALREADY_CAPTURED"
                    continue
                released = await ledger.release_hold(GENERATION, key, **kwargs)
                if target.status == "open":
                    model.free(target, "expired" if expired else "released", clock[0])
                assert released.status == target.status
                sent.append(Sent("release_hold", GENERATION, key, kwargs, released))

        elif isinstance(step, Tick):
            clock[0] += timedelta(seconds=step.seconds)
            due = [h for h in model.holds if h.status == "open" and h.expires_at <= clock[0]]
            # (>=: earlier examples' holds share the database and may fall due too.)
            assert await ledger.expire_due() >= len(due)
            for expiring in sorted(due, key=lambda h: h.id):  # the sweeper's order
                model.free(expiring, "expired", clock[0])
            await ledger.expire_lots_due(batch=10**6)
            for wallet_ in range(WALLETS):
                model.expire(wallet_, clock[0])

        elif isinstance(step, TakeBack):
            # What a refund or dispute webhook does to the wallet (payments._take_back).
            async with db.session_factory(engine)() as session, session.begin():
                wallet = await store.lock_wallet(session, users[step.wallet])
                assert wallet is not None
                back = await take_back(
                    session, wallet, step.credits, Kind.PURCHASE_REFUNDED, "cs_x", "", clock[0]
                )
            model.expire(step.wallet, clock[0])
            taken = min(step.credits, model.available(step.wallet))
            model.draw(step.wallet, taken)
            model.debt[step.wallet] += step.credits - taken
            model.minted -= taken
            assert (back.taken, back.owed) == (taken, step.credits - taken)

        elif isinstance(step, Debit):
            kwargs = {"user_id": users[step.wallet], "amount": step.amount, "reason": "r"}
            refusal = model.spend_refusal(step.wallet, step.amount, clock[0])
            if refusal is not None:
                assert await reason(ledger.debit(ADMIN, key, debited_by=ADMIN, **kwargs)) == refusal
                continue
            entry = await ledger.debit(ADMIN, key, debited_by=ADMIN, **kwargs)
            model.expire(step.wallet, clock[0])
            model.draw(step.wallet, step.amount)
            model.minted -= step.amount
            assert entry.balance_after == model.balance[step.wallet]
            sent.append(Sent("debit", ADMIN, key, {"debited_by": ADMIN, **kwargs}, entry))

        elif isinstance(step, RefundCharge):
            if not model.charges:
                continue
            charged = model.charges[step.charge % len(model.charges)]
            wallet_index_, charge_id, credits, refunded, paid_from = charged
            kwargs = {"user_id": users[wallet_index_], "transaction_id": charge_id, "reason": "r"}
            call = ledger.refund_charge(ADMIN, key, refunded_by=ADMIN, **kwargs)
            if refunded:
                assert await reason(call) == "CHARGE_ALREADY_REFUNDED"
                continue
            entry = await call
            charged[3] = True
            bucket = "allowance" if "allowance" in paid_from else "grant"
            model.credit(wallet_index_, credits, bucket)
            model.minted += credits
            assert (entry.kind, entry.amount, entry.reference) == ("refund", credits, charge_id)
            sent.append(Sent("refund_charge", ADMIN, key, {"refunded_by": ADMIN, **kwargs}, entry))

        elif isinstance(step, Replay | Reuse):
            if not sent:
                continue
            earlier = sent[step.step % len(sent)]
            call = getattr(ledger, earlier.call)
            if isinstance(step, Replay):
                # The first result again, whatever happened since; no second effect.
                assert await call(earlier.scope, earlier.key, **earlier.kwargs) == earlier.result
            else:
                changed = dict(earlier.kwargs)
                if "amount" in changed:
                    changed["amount"] += 1
                elif "reason" in changed:
                    changed["reason"] += "!"
                else:
                    changed["hold_id"] = str(uuid.uuid4())
                outcome = await reason(call(earlier.scope, earlier.key, **changed))
                assert outcome == "IDEMPOTENCY_KEY_REUSED"

        # After every step the wallets are what the model says.
        model.settle()
        event(type(step).__name__)
        for i, user_id in enumerate(users):
            wallet = await ledger.wallet(user_id)
            seen = (wallet.balance, wallet.held, wallet.debt)
            assert seen == (model.balance[i], model.held[i], model.debt[i]), (n, step)
            assert wallet.available >= 0
            assert wallet.debt == 0 or wallet.available == 0
            _, summary = await ledger.credits(user_id)
            shown = {b: n for b, n in summary.buckets.items() if n}
            assert shown == {b: n for b, n in model.buckets(i).items() if n}, (n, step)

    report = await books(engine, users)
    assert report.violations == []
    assert report.held == {u: sum(
        h.amount for h in model.holds if h.status == "open" and users[h.wallet] == u
    ) for u in users}  # fmt: skip
    assert report.debts == dict(zip(users, model.debt, strict=True))
    assert report.minted == model.minted and report.charged == model.charged
    assert report.total == report.minted - report.charged


def test_the_model_is_not_vacuous() -> None:
    """The model refuses what it must: a guard against a model that agrees with a
    broken ledger by accepting everything."""
    now = datetime.now(UTC)
    model = Model()
    model.held[0] = 60
    assert model.available(0) == 40
    hold = ModelHold("h", 0, 60, now)
    model.free(hold, "released", now)
    assert (model.held[0], hold.status) == (0, "released")
    assert replace(hold, status="open").status == "open"
    # Allowance is spent first and never transferred; past its expiry it is gone.
    model.credit(0, 50, "allowance", now + timedelta(seconds=5))
    assert model.transferable(0, now) == 100
    assert [lot.bucket for lot, _ in model.draw(0, 60)] == ["allowance", "bonus"]
    assert model.spend_refusal(0, 91, now) == "INSUFFICIENT_CREDITS"
    model.credit(0, 10, "allowance", now)
    assert model.spend_refusal(0, 90, now) is None and model.due(0, now) == 10
    model.expire(0, now)
    assert model.buckets(0) == {"bonus": 90, "allowance": 0}
