"""Plans: monthly subscriptions through Stripe Billing, their allowance of credits
and the customer portal.

A subscription starts as a Checkout Session in subscription mode (`subscribe`, for
one plan of `KLIK_PLANS`, on the caller's one Stripe customer); Stripe then reports
it through the webhooks payments.py hands over here (`handle`):

  - `invoice.paid`: the period's allowance (the plan's credits), granted once per
    invoice whatever the order or repetition of the deliveries (the invoice id is
    claimed in the grant's transaction), as `allowance` credits that expire at the
    end of the period the invoice pays for; the subscription is active;
  - `invoice.payment_failed`: past_due (no invoice paid, so no allowance);
  - `customer.subscription.created|updated|deleted`: its status, period and
    `cancel_at_period_end` (a cancelled subscription stays cancelled, and an
    older snapshot delivered after a newer one changes nothing);
  - `checkout.session.completed` of a subscription: the subscription is recorded.

Every change to a user's subscriptions publishes `wallet.plan_changed` (in the
same transaction, through the outbox) with a per-user version that only grows, so
auth — the owner of roles — gives or takes away `premium` whatever order the
events arrive in. The portal (`portal`) is Stripe's: the person cancels there and
Stripe reports it by webhook."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bus import event_type_of
from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.errors import FailedPrecondition
from kit.idempotency import check_key, check_replay, fingerprint
from kit.outbox import add_event
from klik.events.v1.events_pb2 import PlanChanged
from services.wallet import domain, payments, store
from services.wallet.changes import credit_wallet
from services.wallet.domain import Bucket, Kind, Plan, Subscription, SubscriptionStatus, Wallet
from services.wallet.settings import WalletOptions
from services.wallet.stripe_client import CheckoutSession, Event, StripeClient

log = logging.getLogger(__name__)

SUBSCRIBE = "subscribe"
PLAN_CHANGED = event_type_of(PlanChanged)
INVOICE_PAID = "invoice.paid"
INVOICE_FAILED = "invoice.payment_failed"
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
# The event types payments.webhook hands over (besides a subscription's checkout).
EVENTS = (INVOICE_PAID, INVOICE_FAILED, *SUBSCRIPTION_EVENTS)


class Plans:
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

    def plans(self) -> tuple[Plan, ...]:
        return self._options.plans

    async def subscribe(
        self, user_id: str, key: str, *, plan_id: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        """A Checkout Session (subscription mode) for one plan, once per key.
        ALREADY_SUBSCRIBED while the caller has a subscription in force."""
        check_key(key, required=True)
        plan = domain.find_plan(self._options.plans, plan_id)
        origins = self._options.checkout_return_origins
        domain.require_return_url(success_url, "success_url", origins)
        domain.require_return_url(cancel_url, "cancel_url", origins)
        offered = fingerprint(
            SUBSCRIBE, {"plan_id": plan_id, "success_url": success_url, "cancel_url": cancel_url}
        )
        async with self._uow.read() as session:
            domain.require_open(await store.get_wallet(session, user_id), user_id, "you")
            stored = await store.read_key(session, user_id, SUBSCRIBE, key)
            customer = await store.stripe_customer(session, user_id)
            current = _current(await store.user_subscriptions(session, user_id))
        if stored is not None and stored.response is not None:
            check_replay(stored.fingerprint, offered, SUBSCRIBE)
            return payments.load_session(stored.response)
        if current is not None and current.active:
            raise FailedPrecondition(
                "ALREADY_SUBSCRIBED",
                "you have a subscription in force: change or cancel it in the billing portal",
                details={"plan_id": current.plan_id},
            )
        if customer is None:
            customer = await payments.remember_customer(
                self._uow, self._stripe, user_id, self._clock
            )
        stripe_key = (
            "klik-subscribe-" + hashlib.sha256(f"{user_id}:{key}:{offered}".encode()).hexdigest()
        )
        made = await self._stripe.create_subscription_checkout(
            key=stripe_key,
            customer=customer,
            user_id=user_id,
            plan=plan,
            success_url=success_url,
            cancel_url=cancel_url,
        )
        async with self._uow.write() as session:
            first = await payments.claim(session, user_id, SUBSCRIBE, key, offered, self._clock())
            if first is not None:
                return payments.load_session(first)
            await store.save_response(session, user_id, SUBSCRIBE, key, f"{made.id} {made.url}")
        return made

    async def subscription(self, user_id: str) -> Subscription:
        """The caller's subscription: the one in force, else the latest one."""
        async with self._uow.read() as session:
            current = _current(await store.user_subscriptions(session, user_id))
        if current is None:
            raise domain.no_subscription()
        return current

    async def portal(self, user_id: str, return_url: str) -> str:
        """The URL of a Stripe customer-portal session for the caller."""
        domain.require_return_url(return_url, "return_url", self._options.checkout_return_origins)
        async with self._uow.read() as session:
            customer = await store.stripe_customer(session, user_id)
        if customer is None:
            raise domain.no_billing_account()
        return await self._stripe.create_portal(customer=customer, return_url=return_url)


def _current(subscriptions: list[Subscription]) -> Subscription | None:
    """The subscription to show: the first in force, else the most recent."""
    for subscription in subscriptions:
        if subscription.active:
            return subscription
    return subscriptions[0] if subscriptions else None


# ---- the webhooks -------------------------------------------------------------------


def _at(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _invoice_subscription(obj: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """An invoice's subscription id and its metadata (where the API version puts them)."""
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    legacy = obj.get("subscription_details") or {}
    subscription = obj.get("subscription") or details.get("subscription") or ""
    if isinstance(subscription, Mapping):
        subscription = subscription.get("id", "")
    metadata = details.get("metadata") or legacy.get("metadata") or {}
    return str(subscription), metadata


def _invoice_period(obj: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The period the invoice's subscription lines pay for."""
    lines = (obj.get("lines") or {}).get("data") or []
    starts = [int(line["period"]["start"]) for line in lines if line.get("period")]
    ends = [int(line["period"]["end"]) for line in lines if line.get("period")]
    if not ends:
        return _at(obj.get("period_start")), _at(obj.get("period_end"))
    return _at(min(starts)), _at(max(ends))


def _subscription_period(obj: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """A subscription's current period: on the object (older API versions) or on
    its items (2025-03-31 and later)."""
    start, end = obj.get("current_period_start"), obj.get("current_period_end")
    items = (obj.get("items") or {}).get("data") or []
    if not end and items:
        start = min(int(i.get("current_period_start") or 0) for i in items)
        end = max(int(i.get("current_period_end") or 0) for i in items)
    return _at(start), _at(end)


async def handle(
    session: AsyncSession, event: Event, now: datetime, plans: tuple[Plan, ...]
) -> None:
    """Apply one verified (and just recorded) Stripe event about a subscription."""
    obj = event.object
    if event.type in SUBSCRIPTION_EVENTS:
        await _subscription_changed(session, event, now, plans)
    elif event.type in (INVOICE_PAID, INVOICE_FAILED):
        await _invoice(session, event, now, plans)
    elif obj.get("object") == "checkout.session" and obj.get("subscription"):
        subscription = obj["subscription"]
        if isinstance(subscription, Mapping):
            subscription = subscription.get("id", "")
        metadata = obj.get("metadata") or {}
        await _apply(session, plans, str(subscription), metadata, now, lambda s: s)


async def _subscription_changed(
    session: AsyncSession, event: Event, now: datetime, plans: tuple[Plan, ...]
) -> None:
    obj = event.object
    start, end = _subscription_period(obj)
    deleted = event.type == "customer.subscription.deleted"
    raw = str(obj.get("status") or "")
    status = SubscriptionStatus.CANCELED if deleted else domain.subscription_status(raw)

    def change(subscription: Subscription) -> Subscription:
        return replace(
            subscription,
            status=status,
            current_period_start=start or subscription.current_period_start,
            current_period_end=end or subscription.current_period_end,
            cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        )

    metadata = obj.get("metadata") or {}
    # The end applies whenever it arrives; other snapshots only if not older.
    stamp = 0 if deleted else event.created
    await _apply(session, plans, str(obj.get("id", "")), metadata, now, change, stamp)


async def _invoice(
    session: AsyncSession, event: Event, now: datetime, plans: tuple[Plan, ...]
) -> None:
    obj = event.object
    subscription_id, metadata = _invoice_subscription(obj)
    start, end = _invoice_period(obj)
    paid = event.type == INVOICE_PAID

    def change(subscription: Subscription) -> Subscription:
        status = SubscriptionStatus.ACTIVE if paid else SubscriptionStatus.PAST_DUE
        later = end is not None and (
            subscription.current_period_end is None or end > subscription.current_period_end
        )
        return replace(
            subscription,
            status=status,
            current_period_start=start if later else subscription.current_period_start,
            current_period_end=end if later else subscription.current_period_end,
        )

    applied = await _apply(session, plans, subscription_id, metadata, now, change)
    if applied is None or not paid or end is None:
        return
    wallet, subscription = applied
    plan = next((p for p in plans if p.id == subscription.plan_id), None)
    if plan is None:
        log.warning("invoice %s: plan %s not on sale", obj.get("id"), subscription.plan_id)
        return
    invoice_id = str(obj.get("id", ""))
    if not await store.claim_invoice(
        session, invoice_id, subscription.id, plan.allowance, end, now
    ):
        return  # granted before, by another event about the same invoice
    if wallet.is_open:
        await _grant_allowance(session, wallet, plan.allowance, end, invoice_id, now)
    else:
        log.warning("invoice %s is for a closed wallet: no allowance granted", invoice_id)


async def _grant_allowance(
    session: AsyncSession,
    wallet: Wallet,
    amount: int,
    period_end: datetime,
    invoice_id: str,
    now: datetime,
) -> None:
    """Credit one paid invoice's allowance to `wallet` (locked by the caller): a lot
    of bucket `allowance` that expires at `period_end`, the end of the period the
    invoice pays for (the sweeper takes what is left then)."""
    await credit_wallet(
        session,
        wallet,
        amount,
        now,
        kind=Kind.ALLOWANCE,
        bucket=Bucket.ALLOWANCE,
        expires_at=period_end,
        reference=invoice_id,
        description=f"plan allowance until {period_end.isoformat()}",
    )


async def _apply(
    session: AsyncSession,
    plans: tuple[Plan, ...],
    subscription_id: str,
    metadata: Mapping[str, Any],
    now: datetime,
    change: Any,
    stripe_time: int = 0,
) -> tuple[Wallet, Subscription] | None:
    """Change one subscription (recorded from `metadata` if klik has not seen it)
    under its wallet's lock, and publish `wallet.plan_changed` when it changed.
    `stripe_time` > 0: the change is a snapshot of the subscription Stripe made
    then, ignored if an applied snapshot is newer. Returns the wallet and the
    subscription as saved; None for a subscription that is not klik's."""
    if not subscription_id:
        return None
    user_id = str(metadata.get("user_id", ""))
    plan_id = str(metadata.get("plan_id", ""))
    existing = await session.scalar(
        select(store.subscriptions.c.user_id).where(store.subscriptions.c.id == subscription_id)
    )
    user_id = existing or user_id
    if not user_id or (existing is None and not plan_id):
        log.warning("subscription %s is not one of klik's: ignored", subscription_id)
        return None
    wallet = await store.lock_wallet(session, user_id)
    if wallet is None:
        log.warning("subscription %s names no wallet: ignored", subscription_id)
        return None
    known = await store.lock_subscription(session, subscription_id)
    if known is None:
        before = Subscription(
            id=subscription_id,
            user_id=user_id,
            plan_id=plan_id,
            status=SubscriptionStatus.INCOMPLETE,
            created_at=now,
            updated_at=now,
        )
        seen = 0
    else:
        before, seen = known
    after = before
    if stripe_time == 0 or stripe_time >= seen:
        after = change(before)
        seen = max(seen, stripe_time)
    if before.status == SubscriptionStatus.CANCELED:
        after = replace(after, status=SubscriptionStatus.CANCELED)  # the end is final
    if known is not None and after == before:
        return wallet, before
    version = int(
        await session.scalar(
            select(func.coalesce(func.max(store.subscriptions.c.version), 0)).where(
                store.subscriptions.c.user_id == user_id
            )
        )
        or 0
    )
    after = replace(after, updated_at=now, version=version + 1)
    await store.save_subscription(session, after, seen)
    await _plan_changed(session, plans, user_id)
    return wallet, after


async def _plan_changed(session: AsyncSession, plans: tuple[Plan, ...], user_id: str) -> None:
    """Publish the user's plan as it now stands (`wallet.plan_changed`)."""
    subscriptions = await store.user_subscriptions(session, user_id)
    current = _current(subscriptions)
    assert current is not None
    version = max(s.version for s in subscriptions)
    payload = PlanChanged(
        user_id=user_id,
        plan_id=current.plan_id if current.active else "",
        active=current.active,
        premium=current.active and any(p.premium for p in plans if p.id == current.plan_id),
        version=version,
    )
    if current.active and current.current_period_end is not None:
        payload.period_end.FromDatetime(current.current_period_end)
    await add_event(session, PLAN_CHANGED, payload, aggregate_id=user_id, user_id=user_id)
