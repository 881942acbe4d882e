"""Calls to Stripe, through the official `stripe` library (async, over its
HTTPXClient): at `KLIK_STRIPE_API_BASE` — the sandbox's Stripe (sandbox/stripe.py)
unless `KLIK_STRIPE_SECRET_KEY` is set, then Stripe itself — and the check of a
webhook's signature (`stripe.Webhook.construct_event`, 300 s tolerance).

Every call that creates something carries a Stripe idempotency key derived from
klik's own request, so a retry after a lost answer returns the same object instead
of making a second one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe

from kit.errors import InvalidArgument, Unavailable
from services.wallet.domain import CreditPack, Plan
from services.wallet.settings import WalletOptions

SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class Refund:
    id: str
    amount: int
    status: str


@dataclass(frozen=True)
class Event:
    """A verified webhook event: its id, type and `data.object` as plain JSON."""

    id: str
    type: str
    object: Mapping[str, Any]
    # When Stripe made it (unix seconds): orders events about one object.
    created: int = 0


def unavailable(error: Exception) -> Unavailable:
    return Unavailable(
        "PAYMENTS_UNAVAILABLE", f"the payment provider could not be reached: {type(error).__name__}"
    )


class StripeClient:
    def __init__(self, options: WalletOptions) -> None:
        bases: Any = {"api": options.stripe_api_base} if options.stripe_api_base else None
        self._client = stripe.StripeClient(
            options.stripe_secret_key,
            http_client=stripe.HTTPXClient(timeout=15),
            base_addresses=bases,
            max_network_retries=2,
        )
        self._webhook_secret = options.stripe_webhook_secret

    async def create_customer(self, user_id: str) -> str:
        """A Stripe customer for `user_id` (the same one for the same user, by key)."""
        try:
            customer = await self._client.v1.customers.create_async(
                params={"metadata": {"user_id": user_id}},
                options={"idempotency_key": f"klik-customer-{user_id}"},
            )
        except stripe.StripeError as error:
            raise unavailable(error) from None
        return str(customer.id)

    async def create_checkout(
        self,
        *,
        key: str,
        customer: str,
        user_id: str,
        pack: CreditPack,
        success_url: str,
        cancel_url: str,
    ) -> CheckoutSession:
        """A Checkout Session (payment mode) for one pack; `key` makes it once."""
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params={
                    "mode": "payment",
                    "customer": customer,
                    "client_reference_id": user_id,
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": pack.currency,
                                "unit_amount": pack.price,
                                "product_data": {"name": f"{pack.credits} klik credits"},
                            },
                        }
                    ],
                    "metadata": {
                        "user_id": user_id,
                        "pack_id": pack.id,
                        "credits": str(pack.credits),
                    },
                    # The PaymentIntent (and so its charge, refunds and disputes)
                    # names the user too.
                    "payment_intent_data": {"metadata": {"user_id": user_id, "pack_id": pack.id}},
                },
                options={"idempotency_key": key},
            )
        except stripe.StripeError as error:
            raise unavailable(error) from None
        return CheckoutSession(str(session.id), str(session.url))

    async def create_subscription_checkout(
        self,
        *,
        key: str,
        customer: str,
        user_id: str,
        plan: Plan,
        success_url: str,
        cancel_url: str,
    ) -> CheckoutSession:
        """A Checkout Session (subscription mode) for one plan; `key` makes it once.
        The subscription (and so its invoices) names the user and the plan."""
        metadata = {"user_id": user_id, "plan_id": plan.id}
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": user_id,
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "line_items": [{"price": plan.price_id, "quantity": 1}],
                    "metadata": metadata,
                    "subscription_data": {"metadata": metadata},
                },
                options={"idempotency_key": key},
            )
        except stripe.StripeError as error:
            raise unavailable(error) from None
        return CheckoutSession(str(session.id), str(session.url))

    async def create_portal(self, *, customer: str, return_url: str) -> str:
        """A customer-portal session's URL, where the person manages (cancels)
        their subscription."""
        try:
            portal = await self._client.v1.billing_portal.sessions.create_async(
                params={"customer": customer, "return_url": return_url}
            )
        except stripe.StripeError as error:
            raise unavailable(error) from None
        return str(portal.url)

    async def refund(
        self, *, key: str, payment_intent: str, amount: int, metadata: Mapping[str, str]
    ) -> Refund:
        """Refund `amount` (minor units) of a PaymentIntent; `key` makes it once."""
        try:
            refund = await self._client.v1.refunds.create_async(
                params={
                    "payment_intent": payment_intent,
                    "amount": amount,
                    "metadata": dict(metadata),
                },
                options={"idempotency_key": key},
            )
        except stripe.StripeError as error:
            raise unavailable(error) from None
        return Refund(str(refund.id), int(refund.amount), str(refund.status or ""))

    async def receipt_url(self, payment_intent: str) -> str:
        """The receipt of a PaymentIntent's charge; "" when Stripe cannot say now
        (the receipt is then learnt from the charge's later events)."""
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(
                payment_intent, params={"expand": ["latest_charge"]}
            )
        except stripe.StripeError:
            return ""
        charge = intent.latest_charge
        if charge is None or isinstance(charge, str):
            return ""
        return str(charge.receipt_url or "")

    def verify(self, payload: bytes, signature: str) -> Event:
        """The event in `payload`, if `signature` (the Stripe-Signature header) signs
        it under the webhook secret within the tolerance; INVALID_SIGNATURE otherwise."""
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError:
            raise InvalidArgument(
                "INVALID_SIGNATURE", "the Stripe-Signature does not sign this body"
            ) from None
        except ValueError:
            raise InvalidArgument("MALFORMED_EVENT", "the body is not a Stripe event") from None
        data = event.to_dict()
        obj = data.get("data", {}).get("object")
        if not isinstance(obj, dict) or not data.get("id") or not data.get("type"):
            raise InvalidArgument("MALFORMED_EVENT", "the body is not a Stripe event")
        return Event(str(data["id"]), str(data["type"]), obj, int(data.get("created") or 0))
