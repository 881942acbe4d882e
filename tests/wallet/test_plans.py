"""Plans, end to end: subscribe over the gateway, pay on the sandbox's Stripe (a
Checkout Session in subscription mode), its signed webhooks through the gateway's
raw-body route into the wallet — each paid invoice's allowance granted once,
whatever the delivery order or repetition; renewals, failures, cancellation in
the customer portal; `wallet.plan_changed` in the outbox for auth."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from kit.db import UnitOfWork, session_factory
from kit.tables import outbox
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import PlanChanged
from sandbox.stripe import sign
from services.wallet.ledger import Ledger
from services.wallet.store import ledger, subscriptions
from tests.wallet.money import APP, SECRET, Money, money
from tests.wallet.support import books

__all__ = ["money"]  # the fixture

BONUS = 100
PREMIUM = 2000  # the default `premium` plan's allowance
BASIC = 500


async def subscribe(money: Money, user: str, key: str, plan_id: str = "premium") -> Any:
    reply = await money.gateway.post(
        "/v1/wallet/subscribe",
        json={
            "plan_id": plan_id,
            "success_url": f"{APP}/subscribed?session={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{APP}/cancelled",
            "idempotency_key": key,
        },
        headers=money.auth(user),
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


async def subscribed(money: Money, user: str, plan_id: str = "premium", **pay: Any) -> str:
    """Subscribe, pay on the sandbox and wait for the webhooks; the subscription id."""
    made = await subscribe(money, user, f"sub-{plan_id}", plan_id)
    paid = await money.act(made["session_id"], "pay", **pay)
    assert paid.status_code == 200, paid.text
    await money.delivered()
    subscription: str = money.stripe.sessions[made["session_id"]]["subscription"]
    return subscription


async def allowances(money: Money, user: str) -> list[tuple[str, int]]:
    async with money.wallet.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(ledger.c.reference, ledger.c.amount)
                .where(ledger.c.user_id == user, ledger.c.kind == "allowance")
                .order_by(ledger.c.seq)
            )
        ).all()
    return [(row.reference, row.amount) for row in rows]


async def plan_events(money: Money, user: str) -> list[PlanChanged]:
    async with money.wallet.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.payload)
                .where(outbox.c.type == "wallet.plan_changed", outbox.c.aggregate_id == user)
                .order_by(outbox.c.seq)
            )
        ).all()
    events = []
    for row in rows:
        envelope = Envelope.FromString(row.payload)
        event = PlanChanged()
        envelope.payload.Unpack(event)
        events.append(event)
    return events


async def subscription_of(money: Money, user: str) -> dict[str, Any]:
    reply = await money.gateway.get("/v1/wallet/subscription", headers=money.auth(user))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def control(money: Money, subscription: str, action: str, **body: Any) -> None:
    reply = await money.sandbox.post(
        f"/_sandbox/stripe/subscriptions/{subscription}:{action}", json=body
    )
    assert reply.status_code == 200, reply.text
    await money.delivered()


async def test_the_plans_are_public(money: Money) -> None:
    reply = await money.gateway.get("/v1/wallet/plans")
    assert reply.status_code == 200, reply.text
    assert reply.json()["plans"] == [
        {
            "id": "basic",
            "price_id": "price_klik_basic",
            "monthly_allowance": "500",
            "premium_models": False,
        },
        {
            "id": "premium",
            "price_id": "price_klik_premium",
            "monthly_allowance": "2000",
            "premium_models": True,
        },
    ]


async def test_a_paid_subscription_grants_each_invoice_once(money: Money) -> None:
    user = await money.user()
    missing = await money.gateway.get("/v1/wallet/subscription", headers=money.auth(user))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SUBSCRIPTION_NOT_FOUND"
    made = await subscribe(money, user, "s-1")
    # The same key is the same session; the page says it is a subscription.
    assert await subscribe(money, user, "s-1") == made
    page = await money.sandbox.get(made["url"])
    assert page.status_code == 200 and "Subscription" in page.text
    stripe_session = money.stripe.sessions[made["session_id"]]
    assert stripe_session["mode"] == "subscription"
    paid = await money.sandbox.post(f"/checkout/{made['session_id']}/pay")
    assert paid.status_code == 303
    await money.delivered()
    sub_id = money.stripe.sessions[made["session_id"]]["subscription"]
    [invoice] = await money.events("invoice.paid")
    assert invoice["delivered"]
    kinds = {e["type"] for e in await money.events()}
    assert {"checkout.session.completed", "customer.subscription.created"} <= kinds
    assert await money.balance(user) == BONUS + PREMIUM
    assert await allowances(money, user) == [(invoice["data"]["object"]["id"], PREMIUM)]
    shown = await subscription_of(money, user)
    period_end = money.stripe.subscriptions[sub_id]["current_period_end"]
    assert shown["id"] == sub_id and shown["plan_id"] == "premium"
    assert shown["status"] == "active" and shown["active"] is True
    assert shown["cancel_at_period_end"] is False
    assert datetime.fromisoformat(shown["current_period_end"]) == datetime.fromtimestamp(
        period_end, UTC
    )
    # A second subscription while one is in force is refused.
    again = await money.gateway.post(
        "/v1/wallet/subscribe",
        json={
            "plan_id": "basic",
            "success_url": f"{APP}/ok",
            "cancel_url": f"{APP}/no",
            "idempotency_key": "s-2",
        },
        headers=money.auth(user),
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "ALREADY_SUBSCRIBED"
    # The last event auth hears: active, premium.
    last = (await plan_events(money, user))[-1]
    assert last.active and last.premium and last.plan_id == "premium"
    assert (await books(money.wallet.engine, [user])).violations == []


async def test_the_allowance_is_spent_first_not_transferable_and_expires_at_period_end(
    money: Money,
) -> None:
    user, friend = await money.user(), await money.user()
    sub_id = await subscribed(money, user)
    period_end = datetime.fromtimestamp(
        money.stripe.subscriptions[sub_id]["current_period_end"], UTC
    )
    shown = await money.wallet_of(user)
    assert shown["buckets"]["allowance"] == str(PREMIUM)
    assert shown["next_expiry"] == {
        "amount": str(PREMIUM),
        "expires_at": period_end.isoformat().replace("+00:00", "Z"),
    }
    # Only the bonus may leave: the allowance is the subscriber's own.
    refused = await money.gateway.post(
        "/v1/wallet/transfers",
        json={"to_user_id": friend, "amount": BONUS + 1, "note": "", "idempotency_key": "t-1"},
        headers=money.auth(user),
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "INSUFFICIENT_TRANSFERABLE_CREDITS"
    # A spend draws on the allowance (it expires first), not on the bonus.
    spent = await money.gateway.post(
        "/v1/admin/wallets/" + user + ":debit",
        json={"amount": 300, "reason": "a spend", "idempotency_key": "d-1"},
        headers=money.auth("admin-1", "admin"),
    )
    assert spent.status_code == 200, spent.text
    assert (await money.wallet_of(user))["buckets"]["allowance"] == str(PREMIUM - 300)

    def sweeper(at: datetime) -> Ledger:
        uow = UnitOfWork(session_factory(money.wallet.engine))
        return Ledger(uow, clock=lambda: at)

    assert await sweeper(period_end - timedelta(microseconds=1)).expire_lots_due() == 0
    assert await sweeper(period_end).expire_lots_due() == 1
    assert await sweeper(period_end).expire_lots_due() == 0, "once"
    after = await money.wallet_of(user)
    assert after["balance"] == str(BONUS) and after["buckets"]["allowance"] == "0"
    assert (await books(money.wallet.engine, [user])).violations == []


async def test_invoice_paid_ten_times_at_once_out_of_order_grants_once(money: Money) -> None:
    user = await money.user()
    await subscribed(money, user, fault="duplicate=10,reverse")
    [invoice] = await money.events("invoice.paid")
    assert len(invoice["attempts"]) == 10
    assert all(a["status"] == 200 for a in invoice["attempts"])
    assert await money.balance(user) == BONUS + PREMIUM
    assert len(await allowances(money, user)) == 1
    # Delivered again later, ten more times: still once.
    for _ in range(10):
        redeliver = f"/_sandbox/stripe/events/{invoice['id']}:redeliver"
        assert (await money.sandbox.post(redeliver)).status_code == 202
    await money.delivered()
    assert await money.balance(user) == BONUS + PREMIUM
    assert len(await allowances(money, user)) == 1
    assert (await subscription_of(money, user))["status"] == "active"
    assert (await books(money.wallet.engine, [user])).violations == []


async def test_renew_grants_the_next_period_and_cancel_stops_it(money: Money) -> None:
    user = await money.user()
    sub_id = await subscribed(money, user)
    first_end = (await subscription_of(money, user))["current_period_end"]
    await control(money, sub_id, "renew", fault="duplicate=3")
    assert await money.balance(user) == BONUS + 2 * PREMIUM
    assert len(await allowances(money, user)) == 2
    assert (await subscription_of(money, user))["current_period_start"] == first_end
    # Cancelled at the period's end (in the portal): still in force until then...
    await control(money, sub_id, "cancel", at_period_end=True)
    shown = await subscription_of(money, user)
    assert shown["cancel_at_period_end"] is True and shown["active"] is True
    # ...then the renewal ends it: no invoice, no allowance, no premium.
    await control(money, sub_id, "renew")
    assert (await money.events("customer.subscription.deleted"))[0]["delivered"]
    assert await money.balance(user) == BONUS + 2 * PREMIUM
    assert len(await allowances(money, user)) == 2
    shown = await subscription_of(money, user)
    assert shown["status"] == "canceled" and shown["active"] is False
    last = (await plan_events(money, user))[-1]
    assert not last.active and not last.premium and last.plan_id == ""
    versions = [e.version for e in await plan_events(money, user)]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    # A late, older snapshot of the subscription (active) does not revive it.
    [created] = await money.events("customer.subscription.created")
    assert (
        await money.sandbox.post(f"/_sandbox/stripe/events/{created['id']}:redeliver")
    ).status_code == 202
    await money.delivered()
    assert (await subscription_of(money, user))["status"] == "canceled"


async def test_a_failed_renewal_grants_nothing(money: Money) -> None:
    user = await money.user()
    sub_id = await subscribed(money, user, "basic")
    await control(money, sub_id, "fail")
    assert await money.balance(user) == BONUS + BASIC
    shown = await subscription_of(money, user)
    assert shown["status"] == "past_due" and shown["active"] is False
    last = (await plan_events(money, user))[-1]
    assert not last.active and not last.premium
    # A basic plan never carried premium.
    assert not any(e.premium for e in await plan_events(money, user))


async def test_the_billing_portal_cancels(money: Money) -> None:
    user = await money.user()
    no_customer = await money.gateway.post(
        "/v1/wallet/billing-portal", json={"return_url": f"{APP}/account"}, headers=money.auth(user)
    )
    assert no_customer.status_code == 400
    assert no_customer.json()["error"]["code"] == "NO_BILLING_ACCOUNT"
    sub_id = await subscribed(money, user)
    off_list = await money.gateway.post(
        "/v1/wallet/billing-portal",
        json={"return_url": "https://evil.test/account"},
        headers=money.auth(user),
    )
    assert off_list.status_code == 400
    assert off_list.json()["error"]["code"] == "INVALID_RETURN_URL"
    reply = await money.gateway.post(
        "/v1/wallet/billing-portal", json={"return_url": f"{APP}/account"}, headers=money.auth(user)
    )
    assert reply.status_code == 200, reply.text
    url = reply.json()["url"]
    assert url.startswith(str(money.sandbox.base_url).rstrip("/") + "/billing/")
    page = await money.sandbox.get(url)
    assert page.status_code == 200 and sub_id in page.text and f"{APP}/account" in page.text
    cancelled = await money.sandbox.post(f"{url}/subscriptions/{sub_id}/cancel")
    assert cancelled.status_code == 303
    await money.delivered()
    shown = await subscription_of(money, user)
    assert shown["status"] == "canceled" and shown["active"] is False


async def test_subscribe_refuses_bad_requests(money: Money) -> None:
    user = await money.user()
    headers = money.auth(user)
    good = {
        "plan_id": "premium",
        "success_url": f"{APP}/ok",
        "cancel_url": f"{APP}/no",
        "idempotency_key": "k",
    }
    cases = [
        ({"plan_id": "nope"}, 404, "PLAN_NOT_FOUND"),
        ({"success_url": "https://evil.test/ok"}, 400, "INVALID_RETURN_URL"),
        ({"cancel_url": "javascript:alert(1)"}, 400, "INVALID_RETURN_URL"),
        ({"idempotency_key": ""}, 400, "INVALID_ARGUMENT"),
    ]
    for change, status, reason in cases:
        reply = await money.gateway.post(
            "/v1/wallet/subscribe", json={**good, **change}, headers=headers
        )
        assert reply.status_code == status, (change, reply.text)
        assert reply.json()["error"]["code"] == reason
    assert money.stripe.sessions == {}
    assert (await money.gateway.post("/v1/wallet/subscribe", json=good)).status_code == 401
    assert (
        await money.gateway.post("/v1/wallet/subscribe", json=good, headers=headers)
    ).status_code == 200
    reused = await money.gateway.post(
        "/v1/wallet/subscribe", json={**good, "plan_id": "basic"}, headers=headers
    )
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    async with money.wallet.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(subscriptions))
    assert count == 0


async def test_an_older_subscription_snapshot_changes_nothing(money: Money) -> None:
    user = await money.user()
    sub_id = await subscribed(money, user)
    snapshot = dict(money.stripe.subscriptions[sub_id])
    base = int(time.time())

    async def deliver(event_id: str, created: int, status: str) -> None:
        body = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": "customer.subscription.updated",
                "created": created,
                "data": {"object": {**snapshot, "status": status}},
            }
        ).encode()
        reply = await money.gateway.post(
            "/v1/webhooks/stripe",
            content=body,
            headers={"stripe-signature": sign(body, SECRET, int(time.time()))},
        )
        assert reply.status_code == 200, reply.text

    await deliver("evt_newer", base + 100, "past_due")
    await deliver("evt_older", base + 50, "active")  # made before, delivered after
    shown = await subscription_of(money, user)
    assert shown["status"] == "past_due" and shown["active"] is False
    last = (await plan_events(money, user))[-1]
    assert not last.active and not last.premium
