"""Money in: buying credit packs through Stripe Checkout, and the Stripe webhooks
that report the payments.

A purchase is a Checkout Session klik starts (`checkout`) and a `payments` row; its
credits are granted by the webhook that reports the session paid
(`checkout.session.completed` with `payment_status: paid`, or
`checkout.session.async_payment_succeeded`), whichever arrives first, exactly once:
the payment row is locked and moves `open → paid` once. Each event id is recorded
in the transaction that handles it, so a redelivered event changes nothing; an
event of a type klik does not handle is recorded and acknowledged."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.idempotency import check_key, check_replay, fingerprint
from services.wallet import domain, store
from services.wallet.changes import record
from services.wallet.domain import CreditPack, Kind, Payment, PaymentStatus
from services.wallet.settings import WalletOptions
from services.wallet.stripe_client import CheckoutSession, Event, StripeClient

log = logging.getLogger(__name__)

CHECKOUT = "checkout"
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
EXPIRED_EVENT = "checkout.session.expired"


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
            return _load_session(stored.response)
        if customer is None:
            made = await self._stripe.create_customer(user_id)
            async with self._uow.write() as session:
                customer = await store.remember_customer(session, user_id, made, self._clock())
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
            stored = await store.claim_key(session, user_id, CHECKOUT, key, offered, now)
            if stored is not None:
                check_replay(stored.fingerprint, offered, CHECKOUT)
                assert stored.response is not None
                return _load_session(stored.response)
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

    async def webhook(self, payload: bytes, signature: str) -> None:
        """Handle one signed webhook delivery (INVALID_SIGNATURE: nothing changes)."""
        event = self._stripe.verify(payload, signature)
        async with self._uow.write() as session:
            now = self._clock()
            if not await store.record_event(session, event.id, event.type, now):
                return  # handled before
            if event.type in PAID_EVENTS:
                await self._session_paid(session, event, now)
            elif event.type == EXPIRED_EVENT:
                await self._session_expired(session, event)

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

    async def _session_paid(self, session: AsyncSession, event: Event, now: datetime) -> None:
        obj = event.object
        if obj.get("payment_status") != "paid":
            return  # completed, but the payment is still settling: nothing yet
        payment = await self._payment_of(session, obj, now)
        if payment is None or payment.status == PaymentStatus.PAID:
            return
        wallet = await store.lock_wallet(session, payment.user_id)
        if wallet is not None and wallet.is_open:
            wallet = domain.credit(wallet, payment.credits, now)
            entry = domain.new_entry(
                wallet,
                Kind.PURCHASE,
                payment.credits,
                payment.id,
                f"credit pack {payment.pack_id}",
                now,
            )
            await record(session, wallet, Kind.PURCHASE, payment.credits, now, entry)
        else:
            log.warning("payment %s is for a closed wallet: no credits granted", payment.id)
        paid = replace(
            payment,
            status=PaymentStatus.PAID,
            paid_at=now,
            payment_intent=str(obj.get("payment_intent") or ""),
        )
        await store.save_payment(session, paid)

    async def _session_expired(self, session: AsyncSession, event: Event) -> None:
        payment = await store.lock_payment(session, str(event.object.get("id", "")))
        if payment is not None and payment.status == PaymentStatus.OPEN:
            await store.save_payment(session, replace(payment, status=PaymentStatus.EXPIRED))


def _load_session(raw: str) -> CheckoutSession:
    session_id, _, url = raw.partition(" ")
    return CheckoutSession(session_id, url)
