"""Money in: buying credit packs through Stripe Checkout, and the Stripe webhooks
that report the payments.

A purchase is a Checkout Session klik starts (`checkout`) and a `payments` row; its
credits are granted by the webhook that reports the session paid
(`checkout.session.completed` with `payment_status: paid`, or
`checkout.session.async_payment_succeeded`), whichever arrives first, exactly once:
the payment row is locked and moves `open → paid` once. Each event id is recorded
in the transaction that handles it, so a redelivered event changes nothing; an
event of a type klik does not handle is recorded and acknowledged.

Money back: an admin refunds a payment through Stripe's Refunds API (`refund`);
Stripe then reports it (`charge.refunded`, carrying the charge's running refunded
total) and reports disputes (`charge.dispute.created`). Either takes the purchase's
credits back in proportion to the money returned: the payment keeps Stripe's
totals and the credits taken back so far, so each event takes only what is still
due — a repeated, late or out-of-order event takes nothing more. What the wallet
no longer has available becomes debt (domain.take_back). An event about a charge
whose payment klik has not seen paid yet is refused (503) so Stripe delivers it
again later, after the payment's own event."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import Unavailable
from kit.idempotency import check_key, check_replay, fingerprint
from services.wallet import domain, plans, store
from services.wallet.changes import credit_wallet, take_back
from services.wallet.domain import Bucket, CreditPack, Kind, Payment, PaymentStatus
from services.wallet.settings import WalletOptions
from services.wallet.store import PaymentPage
from services.wallet.stripe_client import CheckoutSession, Event, Refund, StripeClient

log = logging.getLogger(__name__)

CHECKOUT = "checkout"
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
EXPIRED_EVENT = "checkout.session.expired"
REFUNDED_EVENT = "charge.refunded"
DISPUTED_EVENT = "charge.dispute.created"
REFUND_PAYMENT = "refund_payment"


@dataclass(frozen=True)
class RefundAsked:
    """What RefundPayment answers: Stripe's refund, and the payment as klik knows it."""

    refund: Refund
    payment: Payment


class Payments:
    def __init__(
        self,
        uow: UnitOfWork,
        stripe: StripeClient,
        options: WalletOptions,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._stripe = stripe
        self._options = options
        self._clock = clock

    def packs(self) -> tuple[CreditPack, ...]:
        return self._options.credit_packs

    async def checkout(
        self, user_id: str, key: str, *, pack_id: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        """A Checkout Session for one pack, once per idempotency key."""
        check_key(key, required=True)
        pack = domain.find_pack(self._options.credit_packs, pack_id)
        origins = self._options.checkout_return_origins
        domain.require_return_url(success_url, "success_url", origins)
        domain.require_return_url(cancel_url, "cancel_url", origins)
        offered = fingerprint(
            CHECKOUT, {"pack_id": pack_id, "success_url": success_url, "cancel_url": cancel_url}
        )
        async with self._uow.read() as session:
            domain.require_open(await store.get_wallet(session, user_id), user_id, "you")
            stored = await store.read_key(session, user_id, CHECKOUT, key)
            customer = await store.stripe_customer(session, user_id)
        if stored is not None and stored.response is not None:
            check_replay(stored.fingerprint, offered, CHECKOUT)
            return load_session(stored.response)
        if customer is None:
            customer = await remember_customer(self._uow, self._stripe, user_id, self._clock)
        # The same (user, key, request) makes the same session at Stripe: copies of
        # this request racing each other all get the first one.
        stripe_key = (
            "klik-checkout-" + hashlib.sha256(f"{user_id}:{key}:{offered}".encode()).hexdigest()
        )
        made_session = await self._stripe.create_checkout(
            key=stripe_key,
            customer=customer,
            user_id=user_id,
            pack=pack,
            success_url=success_url,
            cancel_url=cancel_url,
        )
        async with self._uow.write() as session:
            now = self._clock()
            first = await claim(session, user_id, CHECKOUT, key, offered, now)
            if first is not None:
                return load_session(first)
            await store.add_payment(
                session,
                Payment(
                    id=made_session.id,
                    user_id=user_id,
                    pack_id=pack.id,
                    credits=pack.credits,
                    amount=pack.price,
                    currency=pack.currency,
                    status=PaymentStatus.OPEN,
                    created_at=now,
                ),
            )
            await store.save_response(
                session, user_id, CHECKOUT, key, f"{made_session.id} {made_session.url}"
            )
        return made_session

    async def payments(
        self, user_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> PaymentPage:
        """The user's payments, newest first."""
        return await self._uow.run_read(
            lambda session: store.list_payments(session, user_id, after=after, limit=limit)
        )

    async def refund(
        self, admin_id: str, key: str, *, payment_id: str, amount: int, reason: str
    ) -> RefundAsked:
        """Ask Stripe to refund `amount` (minor units; 0: all that is left) of a
        payment, once per idempotency key, and keep who asked and why. The credits
        come back out of the wallet when Stripe reports the refund."""
        check_key(key, required=True)
        domain.require_reason(reason)
        domain.require_amount(amount, allow_zero=True)
        offered = fingerprint(
            REFUND_PAYMENT, {"payment_id": payment_id, "amount": amount, "reason": reason}
        )
        async with self._uow.read() as session:
            stored = await store.read_key(session, admin_id, REFUND_PAYMENT, key)
            payment = await store.get_payment(session, payment_id) if payment_id else None
        if stored is not None and stored.response is not None:
            check_replay(stored.fingerprint, offered, REFUND_PAYMENT)
            return await self._refund_asked(stored.response, payment_id)
        if payment is None:
            raise domain.payment_not_found(payment_id)
        left = domain.refundable(payment)
        wanted = amount or left
        if wanted > left:
            raise domain.refund_too_large(payment, wanted, left)
        made = await self._stripe.refund(
            key="klik-refund-" + hashlib.sha256(f"{admin_id}:{key}:{offered}".encode()).hexdigest(),
            payment_intent=payment.payment_intent,
            amount=wanted,
            metadata={"payment_id": payment.id, "admin_id": admin_id, "reason": reason},
        )
        async with self._uow.write() as session:
            now = self._clock()
            first = await claim(session, admin_id, REFUND_PAYMENT, key, offered, now)
            if first is None:
                await store.add_payment_refund(
                    session, made.id, payment.id, admin_id, reason, made.amount, now
                )
                await store.save_response(
                    session,
                    admin_id,
                    REFUND_PAYMENT,
                    key,
                    f"{made.id} {made.amount} {made.status}",
                )
        return await self._refund_asked(first, payment_id, made)

    async def _refund_asked(
        self, stored: str | None, payment_id: str, made: Refund | None = None
    ) -> RefundAsked:
        if stored is not None:
            refund_id, amount, status = stored.split(" ", 2)
            made = Refund(refund_id, int(amount), status)
        assert made is not None
        async with self._uow.read() as session:
            payment = await store.get_payment(session, payment_id)
        assert payment is not None  # payments are never deleted
        return RefundAsked(made, payment)

    async def webhook(self, payload: bytes, signature: str) -> None:
        """Handle one signed webhook delivery (INVALID_SIGNATURE: nothing changes)."""
        event = self._stripe.verify(payload, signature)
        receipt = ""
        intent = str(event.object.get("payment_intent") or "")
        if event.type in PAID_EVENTS and event.object.get("payment_status") == "paid" and intent:
            receipt = await self._stripe.receipt_url(intent)
        async with self._uow.write() as session:
            now = self._clock()
            if not await store.record_event(session, event.id, event.type, now):
                return  # handled before
            if event.type in plans.EVENTS or event.object.get("mode") == "subscription":
                await plans.handle(session, event, now, self._options.plans)
            elif event.type in PAID_EVENTS:
                await self._session_paid(session, event, now, receipt)
            elif event.type == EXPIRED_EVENT:
                await self._session_expired(session, event)
            elif event.type == REFUNDED_EVENT:
                await self._charge_refunded(session, event, now)
            elif event.type == DISPUTED_EVENT:
                await self._charge_disputed(session, event, now)

    async def _payment_of_charge(self, session: AsyncSession, event: Event) -> Payment | None:
        """The paid payment a charge event (a charge or a dispute object) is about,
        locked. None for a charge that is not klik's; UNAVAILABLE (Stripe delivers
        the event again later) for one whose payment klik has not seen paid yet."""
        intent = str(event.object.get("payment_intent") or "")
        payment = await store.lock_payment_of_intent(session, intent)
        if payment is not None:
            return payment
        metadata = event.object.get("metadata") or {}
        if event.type == REFUNDED_EVENT and not metadata.get("user_id"):
            log.warning("charge %s is not one of klik's: ignored", event.object.get("id"))
            return None
        raise Unavailable(
            "PAYMENT_NOT_YET_KNOWN",
            "this charge's payment has not been reported paid yet; deliver it again later",
        )

    async def _charge_refunded(self, session: AsyncSession, event: Event, now: datetime) -> None:
        payment = await self._payment_of_charge(session, event)
        if payment is None:
            return
        refunded = int(event.object.get("amount_refunded") or 0)
        payment = replace(
            payment,
            refunded_amount=max(payment.refunded_amount, refunded),
            receipt_url=str(event.object.get("receipt_url") or payment.receipt_url),
        )
        reasons = await store.refund_reasons(session, payment.id)
        why = "; ".join(f"{reason} (admin {admin})" for admin, reason in reasons)
        description = f"credit pack {payment.pack_id} refunded" + (f": {why}" if why else "")
        await self._take_back(session, payment, Kind.PURCHASE_REFUNDED, description, now)

    async def _charge_disputed(self, session: AsyncSession, event: Event, now: datetime) -> None:
        payment = await self._payment_of_charge(session, event)
        if payment is None or payment.dispute_id:
            return  # one dispute per charge
        payment = replace(
            payment,
            dispute_id=str(event.object.get("id") or "dispute"),
            disputed_amount=int(event.object.get("amount") or 0),
        )
        reason = str(event.object.get("reason") or "")
        description = f"credit pack {payment.pack_id} disputed" + (f": {reason}" if reason else "")
        await self._take_back(session, payment, Kind.PURCHASE_DISPUTED, description, now)

    async def _take_back(
        self, session: AsyncSession, payment: Payment, kind: Kind, description: str, now: datetime
    ) -> None:
        """Take back the credits still due for what `payment` returned (a row of
        `kind` with what was available, the rest as debt) and save the payment."""
        due = domain.credits_to_reverse(payment)
        if due:
            payment = replace(payment, credits_reversed=payment.credits_reversed + due)
            wallet = await store.lock_wallet(session, payment.user_id)
            if wallet is not None and wallet.is_open:
                # Out of this purchase's own lot first, then the others.
                await take_back(session, wallet, due, kind, payment.id, description, now)
            else:
                log.warning("payment %s is of a closed wallet: nothing taken back", payment.id)
        await store.save_payment(session, payment)

    async def _payment_of(
        self, session: AsyncSession, obj: Mapping[str, Any], now: datetime
    ) -> Payment | None:
        """The payment of a Checkout Session object, locked; recorded from the
        session's metadata if the webhook beat checkout's own transaction."""
        if obj.get("mode") != "payment":
            return None
        session_id = str(obj.get("id", ""))
        found = await store.lock_payment(session, session_id)
        if found is not None:
            return found
        metadata = obj.get("metadata") or {}
        user_id, pack_id = str(metadata.get("user_id", "")), str(metadata.get("pack_id", ""))
        credits = str(metadata.get("credits", ""))
        if not (session_id and user_id and pack_id and credits.isdigit() and int(credits) > 0):
            log.warning("checkout session %s is not one of klik's: ignored", session_id)
            return None
        if await store.get_wallet(session, user_id) is None:
            log.warning("checkout session %s names no wallet: ignored", session_id)
            return None
        await store.add_payment(
            session,
            Payment(
                id=session_id,
                user_id=user_id,
                pack_id=pack_id,
                credits=int(credits),
                amount=int(obj.get("amount_total") or 0),
                currency=str(obj.get("currency") or ""),
                status=PaymentStatus.OPEN,
                created_at=now,
            ),
        )
        return await store.lock_payment(session, session_id)

    async def _session_paid(
        self, session: AsyncSession, event: Event, now: datetime, receipt: str
    ) -> None:
        obj = event.object
        if obj.get("payment_status") != "paid":
            return  # completed, but the payment is still settling: nothing yet
        payment = await self._payment_of(session, obj, now)
        if payment is None or payment.status == PaymentStatus.PAID:
            return
        wallet = await store.lock_wallet(session, payment.user_id)
        if wallet is not None and wallet.is_open:
            await credit_wallet(
                session,
                wallet,
                payment.credits,
                now,
                kind=Kind.PURCHASE,
                bucket=Bucket.PURCHASE,
                reference=payment.id,
                description=f"credit pack {payment.pack_id}",
            )
        else:
            log.warning("payment %s is for a closed wallet: no credits granted", payment.id)
        paid = replace(
            payment,
            status=PaymentStatus.PAID,
            paid_at=now,
            payment_intent=str(obj.get("payment_intent") or ""),
            receipt_url=receipt or payment.receipt_url,
        )
        await store.save_payment(session, paid)

    async def _session_expired(self, session: AsyncSession, event: Event) -> None:
        payment = await store.lock_payment(session, str(event.object.get("id", "")))
        if payment is not None and payment.status == PaymentStatus.OPEN:
            await store.save_payment(session, replace(payment, status=PaymentStatus.EXPIRED))


async def remember_customer(
    uow: UnitOfWork, stripe: StripeClient, user_id: str, clock: Clock
) -> str:
    """The user's Stripe customer, made at Stripe (once per user, by key) and kept."""
    made = await stripe.create_customer(user_id)
    async with uow.write() as session:
        return await store.remember_customer(session, user_id, made, clock())


async def claim(
    session: AsyncSession, scope: str, operation: str, key: str, offered: str, now: datetime
) -> str | None:
    """Claim an idempotency key after the Stripe call: None when this request
    claimed it (record its effect now), else the first request's stored response."""
    stored = await store.claim_key(session, scope, operation, key, offered, now)
    if stored is None:
        return None
    check_replay(stored.fingerprint, offered, operation)
    assert stored.response is not None
    return stored.response


def load_session(raw: str) -> CheckoutSession:
    session_id, _, url = raw.partition(" ")
    return CheckoutSession(session_id, url)
