"""Money in through Stripe, end to end: checkout over the gateway, the person paying
on the sandbox's Stripe, its signed webhooks through the gateway's raw-body route
into the wallet — with Stripe's delivery faults (repeats, disorder, delay, forged
or stale signatures, the endpoint down)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from sandbox.stripe import sign
from tests.wallet.money import APP, SECRET, Money, money
from tests.wallet.support import books

__all__ = ["money"]  # the fixture

BONUS = 100  # the signup credits every test wallet opens with
STARTER = 100  # the default `starter` pack's credits


async def test_the_packs_are_public(money: Money) -> None:
    reply = await money.gateway.get("/v1/wallet/packs")
    assert reply.status_code == 200, reply.text
    packs = reply.json()["packs"]
    assert [p["id"] for p in packs] == ["starter", "plus", "pro"]
    assert packs[0] == {"id": "starter", "credits": "100", "price": "500", "currency": "usd"}


async def test_a_paid_checkout_grants_its_pack_once(money: Money) -> None:
    user = await money.user()
    made = await money.checkout(user, "buy-1")
    assert made["url"].startswith(money.sandbox.base_url.__str__().rstrip("/") + "/checkout/")
    # The page a person pays on.
    page = await money.sandbox.get(made["url"])
    assert page.status_code == 200 and "Pay" in page.text
    # The same key is the same session; the customer is made once and kept.
    assert await money.checkout(user, "buy-1") == made
    again = await money.checkout(user, "buy-2")
    assert again["session_id"] != made["session_id"]
    customers = [c for c in money.stripe.customers.values() if c["metadata"]["user_id"] == user]
    assert len(customers) == 1
    assert money.stripe.sessions[again["session_id"]]["customer"] == customers[0]["id"]

    paid = await money.sandbox.post(f"/checkout/{made['session_id']}/pay")
    assert paid.status_code == 303
    assert paid.headers["location"] == f"{APP}/paid?session={made['session_id']}"
    await money.delivered()
    assert await money.balance(user) == BONUS + STARTER
    assert await money.purchases(made["session_id"]) == 1
    assert await money.payment_status(made["session_id"]) == "paid"
    [event] = await money.events("checkout.session.completed")
    assert event["delivered"] and event["attempts"][-1]["status"] == 200
    assert await money.recorded(event["id"]) == 1
    checked = await books(money.wallet.engine, [user])
    assert checked.violations == []


async def test_ten_concurrent_copies_out_of_order_with_their_sibling_grant_once(
    money: Money,
) -> None:
    user = await money.user()
    made = await money.checkout(user, "async")
    session_id = made["session_id"]
    # A delayed payment method: completed, unpaid, delivered ten times at once...
    reply = await money.act(
        session_id, "pay", **{"async": True, "fault": "duplicate=10,delay=1500"}
    )
    assert reply.status_code == 200, reply.text
    # ...and its sibling (paid) overtakes it, ten copies at once too.
    reply = await money.act(session_id, "settle", fault="duplicate=10")
    assert reply.status_code == 200, reply.text
    await money.delivered()
    attempts = [a for e in await money.events() for a in e["attempts"]]
    assert len(attempts) == 20 and all(a["status"] == 200 for a in attempts)
    completed = (await money.events("checkout.session.completed"))[0]
    settled = (await money.events("checkout.session.async_payment_succeeded"))[0]
    first_completed = min(a["at"] for a in completed["attempts"])
    assert max(a["at"] for a in settled["attempts"]) < first_completed  # out of order
    assert await money.balance(user) == BONUS + STARTER
    assert await money.purchases(session_id) == 1
    assert await money.recorded(completed["id"]) == 1
    # Redelivered later: still once.
    for event in (completed, settled):
        assert (
            await money.sandbox.post(f"/_sandbox/stripe/events/{event['id']}:redeliver")
        ).status_code == 202
    await money.delivered()
    assert await money.balance(user) == BONUS + STARTER
    assert (await books(money.wallet.engine, [user])).violations == []


async def test_unpaid_grants_nothing_until_it_is_paid(money: Money) -> None:
    user = await money.user()
    made = await money.checkout(user, "slow")
    assert (await money.act(made["session_id"], "pay", **{"async": True})).status_code == 200
    await money.delivered()
    [completed] = await money.events("checkout.session.completed")
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    assert completed["delivered"]
    assert await money.balance(user) == BONUS
    assert await money.payment_status(made["session_id"]) == "open"
    assert (await money.act(made["session_id"], "settle")).status_code == 200
    await money.delivered()
    assert await money.balance(user) == BONUS + STARTER


async def test_declined_cancelled_and_unknown_events_grant_nothing(money: Money) -> None:
    user = await money.user()
    declined = await money.checkout(user, "declined")
    assert (await money.act(declined["session_id"], "decline")).status_code == 200
    cancelled = await money.checkout(user, "cancelled")
    assert (await money.act(cancelled["session_id"], "cancel")).status_code == 200
    await money.delivered()
    for kind in ("payment_intent.payment_failed", "checkout.session.expired"):
        [event] = await money.events(kind)
        assert event["delivered"], event  # acknowledged
        assert await money.recorded(event["id"]) == 1
    assert await money.balance(user) == BONUS
    assert await money.payment_status(cancelled["session_id"]) == "expired"
    assert await money.payment_status(declined["session_id"]) == "open"
    # A cancelled session cannot be paid any more.
    assert (await money.act(cancelled["session_id"], "pay")).status_code == 409


@pytest.mark.parametrize("fault", ["bad-signature", "stale"])
async def test_a_forged_or_stale_signature_changes_nothing(money: Money, fault: str) -> None:
    user = await money.user()
    made = await money.checkout(user, "forged")
    assert (await money.act(made["session_id"], "pay", fault=fault)).status_code == 200
    await money.delivered()
    [event] = await money.events("checkout.session.completed")
    assert not event["delivered"]
    assert [a["status"] for a in event["attempts"]] == [400]
    assert await money.balance(user) == BONUS
    assert await money.recorded(event["id"]) == 0
    assert await money.payment_status(made["session_id"]) == "open"
    # Delivered again, signed properly: granted.
    redeliver = f"/_sandbox/stripe/events/{event['id']}:redeliver"
    assert (await money.sandbox.post(redeliver)).status_code == 202
    await money.delivered()
    assert await money.balance(user) == BONUS + STARTER


async def test_the_webhook_refuses_what_stripe_did_not_sign(money: Money) -> None:
    body = (
        b'{"id": "evt_forged", "object": "event", "type": "checkout.session.completed",'
        b' "data": {"object": {"id": "cs_x", "object": "checkout.session", "mode": "payment",'
        b' "payment_status": "paid", "metadata": {}}}}'
    )
    missing = await money.gateway.post("/v1/webhooks/stripe", content=body)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "INVALID_SIGNATURE"
    now = int(time.time())
    wrong = await money.gateway.post(
        "/v1/webhooks/stripe",
        content=body,
        headers={"stripe-signature": sign(body, "whsec_x", now)},
    )
    assert wrong.json()["error"]["code"] == "INVALID_SIGNATURE"
    old = now - int(timedelta(minutes=6).total_seconds())
    stale = await money.gateway.post(
        "/v1/webhooks/stripe", content=body, headers={"stripe-signature": sign(body, SECRET, old)}
    )
    assert stale.json()["error"]["code"] == "INVALID_SIGNATURE"
    # One byte changed after signing.
    tampered = await money.gateway.post(
        "/v1/webhooks/stripe",
        content=body.replace(b"forged", b"forgee"),
        headers={"stripe-signature": sign(body, SECRET, now)},
    )
    assert tampered.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert await money.recorded("evt_forged") == 0
    # Signed correctly, an event of a type klik does not handle is acknowledged once.
    unknown = body.replace(b"checkout.session.completed", b"customer.created")
    good = await money.gateway.post(
        "/v1/webhooks/stripe",
        content=unknown,
        headers={"stripe-signature": sign(unknown, SECRET, now)},
    )
    assert good.status_code == 200 and good.json() == {}
    assert await money.recorded("evt_forged") == 1


async def test_an_endpoint_that_is_down_gets_the_event_later(money: Money) -> None:
    user = await money.user()
    made = await money.checkout(user, "down")
    assert (await money.act(made["session_id"], "pay", fault="down=3")).status_code == 200
    await money.delivered()
    [event] = await money.events("checkout.session.completed")
    assert [a.get("error") for a in event["attempts"][:3]] == ["endpoint down"] * 3
    assert event["attempts"][3]["status"] == 200 and len(event["attempts"]) == 4
    assert await money.balance(user) == BONUS + STARTER


async def test_checkout_refuses_bad_requests(money: Money) -> None:
    user = await money.user()
    headers = money.auth(user)
    good = {
        "pack_id": "starter",
        "success_url": f"{APP}/ok",
        "cancel_url": f"{APP}/no",
        "idempotency_key": "k",
    }
    cases = [
        ({"pack_id": "nope"}, 404, "PACK_NOT_FOUND"),
        ({"success_url": "https://evil.test/ok"}, 400, "INVALID_RETURN_URL"),
        ({"cancel_url": "javascript:alert(1)"}, 400, "INVALID_RETURN_URL"),
        ({"idempotency_key": ""}, 400, "INVALID_ARGUMENT"),
    ]
    for change, status, reason in cases:
        reply = await money.gateway.post(
            "/v1/wallet/checkout", json={**good, **change}, headers=headers
        )
        assert reply.status_code == status, (change, reply.text)
        assert reply.json()["error"]["code"] == reason
    assert money.stripe.sessions == {}
    unauthenticated = await money.gateway.post("/v1/wallet/checkout", json=good)
    assert unauthenticated.status_code == 401
    first = await money.gateway.post("/v1/wallet/checkout", json=good, headers=headers)
    assert first.status_code == 200
    reused = await money.gateway.post(
        "/v1/wallet/checkout", json={**good, "pack_id": "pro"}, headers=headers
    )
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
