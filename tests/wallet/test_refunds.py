"""Money back, end to end through the gateway and the sandbox's Stripe: an admin's
refund (Stripe Refunds API, then `charge.refunded`), disputes, the debt a refund
leaves when the credits were spent, the admin tools, receipts and the low-balance
alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from sqlalchemy import func, select

from gateway.eventhub import streamed_types
from kit.tables import outbox
from klik.events.v1 import events_pb2
from klik.events.v1.envelope_pb2 import Envelope
from klik.events.v1.events_pb2 import WalletLowBalance
from klik.wallet.v1 import holds_pb2
from tests.wallet.money import Money, money
from tests.wallet.support import books, failure

__all__ = ["money"]  # the fixture

BONUS = 100  # the signup credits every test wallet opens with
STARTER = 100  # the default `starter` pack's credits (500 cents)
ADMIN = "00000000-0000-0000-0000-00000000a0a0"


def admin(money: Money) -> dict[str, str]:
    return money.auth(ADMIN, "admin")


async def transfer(money: Money, sender: str, recipient: str, amount: int, key: str) -> Any:
    return await money.gateway.post(
        "/v1/wallet/transfers",
        json={"to_user_id": recipient, "amount": amount, "idempotency_key": key},
        headers=money.auth(sender),
    )


async def refund_payment(money: Money, payment_id: str, key: str, **body: Any) -> Any:
    return await money.gateway.post(
        f"/v1/admin/payments/{payment_id}:refund",
        json={"reason": "customer asked", "idempotency_key": key, **body},
        headers=admin(money),
    )


async def rows(money: Money, user_id: str) -> list[dict[str, Any]]:
    reply = await money.gateway.get(
        "/v1/wallet/transactions", params={"page_size": 100}, headers=money.auth(user_id)
    )
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["transactions"]
    return found


async def alerts(money: Money, user_id: str) -> int:
    async with money.wallet.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.aggregate_id == user_id, outbox.c.type == "wallet.low_balance")
        )
    return int(count or 0)


async def test_a_refund_after_spending_leaves_debt_that_the_next_purchase_pays(
    money: Money,
) -> None:
    user, friend = await money.user(), await money.user()
    payment = await money.buy(user, "first")
    assert await money.balance(user) == BONUS + STARTER
    assert (await transfer(money, user, friend, 150, "spend")).status_code == 200

    # Only an admin may refund.
    refused = await money.gateway.post(
        f"/v1/admin/payments/{payment}:refund",
        json={"reason": "mine", "idempotency_key": "k"},
        headers=money.auth(user),
    )
    assert refused.status_code == 403
    reply = await refund_payment(money, payment, "refund-1")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["refund_id"].startswith("re_") and body["amount"] == "500"
    assert money.stripe.refunds[body["refund_id"]]["metadata"]["admin_id"] == ADMIN
    # The same key is the same refund at Stripe.
    again = await refund_payment(money, payment, "refund-1")
    assert again.json()["refund_id"] == body["refund_id"] and len(money.stripe.refunds) == 1
    await money.delivered()
    [refunded] = await money.events("charge.refunded")
    assert refunded["delivered"]

    # 50 were left of the 100 taken back: 50 come off the balance, 50 are owed.
    wallet = await money.wallet_of(user)
    assert (wallet["balance"], wallet["available"], wallet["debt"]) == ("0", "0", "50")
    taken = (await rows(money, user))[0]
    assert taken["kind"] == "purchase_refunded" and taken["reference"] == payment
    assert (taken["amount"], taken["debt_change"], taken["debt_after"]) == ("-50", "50", "50")
    assert "customer asked" in taken["description"] and ADMIN in taken["description"]
    # A second refund has nothing left to refund.
    over = await refund_payment(money, payment, "refund-2")
    assert over.json()["error"]["code"] == "PAYMENT_ALREADY_REFUNDED"

    # Spending is refused while the debt remains, with the reason.
    spent = await transfer(money, user, friend, 1, "spend-2")
    assert spent.status_code == 400 and spent.json()["error"]["code"] == "WALLET_IN_DEBT"
    assert spent.json()["error"]["details"] == {"debt": 50}
    hold = holds_pb2.PlaceHoldRequest(
        user_id=user, amount=1, idempotency_key="hold", reference="job-1"
    )
    hold.expires_at.FromDatetime(datetime.now(UTC) + timedelta(minutes=5))
    place = money.wallet.holds().PlaceHold(hold, metadata=money.wallet.service())
    refusal = await failure(place)
    assert (refusal.code, refusal.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WALLET_IN_DEBT")

    # The next purchase pays the debt first: its 100 credits, then 50 repaid.
    second = await money.buy(user, "second")
    wallet = await money.wallet_of(user)
    assert (wallet["balance"], wallet["debt"]) == ("50", "0")
    repaid, bought = (await rows(money, user))[:2]
    assert (bought["kind"], bought["amount"], bought["reference"]) == ("purchase", "100", second)
    assert (repaid["kind"], repaid["amount"], repaid["debt_change"]) == (
        "debt_repaid",
        "-50",
        "-50",
    )
    assert repaid["reference"] == bought["id"] and repaid["debt_after"] == "0"
    assert (await transfer(money, user, friend, 50, "spend-3")).status_code == 200

    # The receipts say what happened.
    listed = await money.gateway.get("/v1/wallet/payments", headers=money.auth(user))
    assert listed.status_code == 200, listed.text
    newest, oldest = listed.json()["payments"]
    assert (newest["id"], newest["status"]) == (second, "paid")
    assert oldest["id"] == payment and oldest["status"] == "refunded"
    assert (oldest["refunded_amount"], oldest["credits_reversed"]) == ("500", "100")
    assert oldest["receipt_url"].endswith(f"/receipts/{money.charge_of(payment)}")
    receipt = await money.sandbox.get(oldest["receipt_url"])
    assert receipt.status_code == 200 and "Receipt" in receipt.text
    assert (await books(money.wallet.engine, [user, friend])).violations == []


async def test_a_dispute_takes_the_credits_back_and_leaves_the_shortfall_as_debt(
    money: Money,
) -> None:
    user, friend = await money.user(), await money.user()
    payment = await money.buy(user, "disputed")
    assert (await transfer(money, user, friend, 120, "spend")).status_code == 200
    charge = money.charge_of(payment)
    disputed = await money.sandbox.post(f"/_sandbox/stripe/charges/{charge}:dispute")
    assert disputed.status_code == 200
    await money.delivered()
    wallet = await money.wallet_of(user)
    assert (wallet["balance"], wallet["debt"]) == ("0", "20")
    taken = (await rows(money, user))[0]
    assert (taken["kind"], taken["amount"], taken["debt_change"]) == (
        "purchase_disputed",
        "-80",
        "20",
    )
    spent = await transfer(money, user, friend, 1, "spend-2")
    assert spent.json()["error"]["code"] == "WALLET_IN_DEBT"
    # A disputed payment is not refunded on top.
    reply = await refund_payment(money, payment, "refund")
    assert reply.json()["error"]["code"] == "PAYMENT_DISPUTED"
    # Redelivered, the dispute takes nothing more.
    [event] = await money.events("charge.dispute.created")
    redeliver = f"/_sandbox/stripe/events/{event['id']}:redeliver"
    assert (await money.sandbox.post(redeliver)).status_code == 202
    await money.delivered()
    assert (await money.wallet_of(user))["debt"] == "20"
    await money.buy(user, "after")
    wallet = await money.wallet_of(user)
    assert (wallet["balance"], wallet["debt"]) == ("80", "0")
    listed = (await money.gateway.get("/v1/wallet/payments", headers=money.auth(user))).json()
    assert [p["status"] for p in listed["payments"]] == ["paid", "disputed"]
    assert (await books(money.wallet.engine, [user, friend])).violations == []


async def test_repeated_and_out_of_order_refund_events_take_the_credits_back_once(
    money: Money,
) -> None:
    user = await money.user()
    payment = await money.buy(user, "partial")
    # Two partial refunds (200 then 300 of 500 cents): the first one's events are
    # delayed past the second's, and each is delivered four times at once.
    faults = "/_sandbox/stripe/faults"
    assert (await money.sandbox.post(faults, json={"fault": "duplicate=4,delay=700"})).is_success
    first = await refund_payment(money, payment, "r1", amount=200)
    assert first.status_code == 200, first.text
    assert (await money.sandbox.post(faults, json={"fault": "duplicate=4"})).is_success
    second = await refund_payment(money, payment, "r2", amount=300)
    assert second.status_code == 200, second.text
    assert (await money.sandbox.delete(faults)).status_code == 204
    await money.delivered()
    early, late = sorted(
        await money.events("charge.refunded"),
        key=lambda e: int(e["data"]["object"]["amount_refunded"]),
    )
    assert max(a["at"] for a in late["attempts"]) < min(a["at"] for a in early["attempts"])
    assert len(early["attempts"]) == len(late["attempts"]) == 4
    # All the money came back, so all the pack's credits went, once.
    assert await money.balance(user) == BONUS
    taken = [r for r in await rows(money, user) if r["kind"] == "purchase_refunded"]
    assert sum(int(r["amount"]) for r in taken) == -STARTER
    for event in (early, late):
        redeliver = f"/_sandbox/stripe/events/{event['id']}:redeliver"
        assert (await money.sandbox.post(redeliver)).status_code == 202
    await money.delivered()
    assert await money.balance(user) == BONUS
    assert (await money.wallet_of(user))["debt"] == "0"
    assert (await books(money.wallet.engine, [user])).violations == []


async def test_a_charge_event_before_its_payment_is_delivered_again_until_it_is_known(
    money: Money,
) -> None:
    user = await money.user()
    made = await money.checkout(user, "late")
    # The session's own event is delayed; the dispute's arrives first.
    reply = await money.act(made["session_id"], "pay", fault="delay=800")
    assert reply.status_code == 200, reply.text
    charge = money.charge_of(made["session_id"])
    assert (await money.sandbox.post(f"/_sandbox/stripe/charges/{charge}:dispute")).is_success
    await money.delivered()
    [event] = await money.events("charge.dispute.created")
    assert event["attempts"][0]["status"] == 503 and event["delivered"]
    # Granted once, taken back once.
    assert await money.purchases(made["session_id"]) == 1
    assert await money.balance(user) == BONUS
    assert (await books(money.wallet.engine, [user])).violations == []


async def test_admin_tools_see_debit_and_refund_a_charge_and_are_admin_only(
    money: Money,
) -> None:
    user = await money.user()
    base = f"/v1/admin/wallets/{user}"
    for method, path in (
        ("GET", base),
        ("GET", f"{base}/transactions"),
        ("POST", f"{base}:debit"),
        ("POST", f"{base}/charges/x:refund"),
        ("POST", "/v1/admin/payments/cs_x:refund"),
    ):
        reply = await money.gateway.request(
            method, path, json={} if method == "POST" else None, headers=money.auth(user)
        )
        assert reply.status_code == 403, (path, reply.text)

    seen = await money.gateway.get(base, headers=admin(money))
    assert seen.status_code == 200 and seen.json()["balance"] == str(BONUS)
    debit = {"amount": 30, "reason": "chargeback fee", "idempotency_key": "d1"}
    taken = await money.gateway.post(f"{base}:debit", json=debit, headers=admin(money))
    assert taken.status_code == 200, taken.text
    row = taken.json()
    assert (row["kind"], row["amount"], row["balance_after"]) == ("debit", "-30", "70")
    assert (row["reference"], row["description"]) == (ADMIN, "chargeback fee")
    replay = await money.gateway.post(f"{base}:debit", json=debit, headers=admin(money))
    assert replay.json()["id"] == row["id"]
    too_much = {**debit, "amount": 71, "idempotency_key": "d2"}
    over = await money.gateway.post(f"{base}:debit", json=too_much, headers=admin(money))
    assert over.status_code == 402
    no_reason = {**debit, "reason": "", "idempotency_key": "d3"}
    bare = await money.gateway.post(f"{base}:debit", json=no_reason, headers=admin(money))
    assert bare.status_code == 400

    # A generation job's charge: a hold captured by the generation service.
    hold = holds_pb2.PlaceHoldRequest(user_id=user, amount=20, idempotency_key="h")
    hold.expires_at.FromDatetime(datetime.now(UTC) + timedelta(minutes=5))
    stub, service = money.wallet.holds(), money.wallet.service()
    placed = await stub.PlaceHold(hold, metadata=service)
    captured = await stub.CaptureHold(
        holds_pb2.CaptureHoldRequest(hold_id=placed.hold.id, amount=15, idempotency_key="c"),
        metadata=service,
    )
    charge = captured.transaction.id
    refund = {"reason": "the job's output was empty", "idempotency_key": "r1"}
    path = f"{base}/charges/{charge}:refund"
    given = await money.gateway.post(path, json=refund, headers=admin(money))
    assert given.status_code == 200, given.text
    back = given.json()
    assert (back["kind"], back["amount"], back["reference"]) == ("refund", "15", charge)
    assert ADMIN in back["description"] and "output was empty" in back["description"]
    assert (await money.gateway.post(path, json=refund, headers=admin(money))).json() == back
    twice = await money.gateway.post(
        path, json={**refund, "idempotency_key": "r2"}, headers=admin(money)
    )
    assert twice.json()["error"]["code"] == "CHARGE_ALREADY_REFUNDED"
    not_a_charge = await money.gateway.post(
        f"{base}/charges/{row['id']}:refund",
        json={**refund, "idempotency_key": "r3"},
        headers=admin(money),
    )
    assert not_a_charge.status_code == 404
    assert not_a_charge.json()["error"]["code"] == "CHARGE_NOT_FOUND"

    listed = await money.gateway.get(
        f"{base}/transactions", params={"page_size": 2}, headers=admin(money)
    )
    assert listed.status_code == 200
    page = listed.json()
    assert [t["kind"] for t in page["transactions"]] == ["refund", "charge"]
    more = await money.gateway.get(
        f"{base}/transactions",
        params={"page_size": 2, "page_token": page["next_page_token"]},
        headers=admin(money),
    )
    assert [t["kind"] for t in more.json()["transactions"]] == ["debit", "signup_bonus"]
    assert await money.balance(user) == BONUS - 30 - 15 + 15
    missing = await money.gateway.get(f"/v1/admin/wallets/{ADMIN}", headers=admin(money))
    assert missing.status_code == 404
    assert (await books(money.wallet.engine, [user])).violations == []


async def test_payments_are_listed_newest_first_a_page_at_a_time(money: Money) -> None:
    user, other = await money.user(), await money.user()
    first = await money.buy(user, "one")
    opened = (await money.checkout(user, "two", "plus"))["session_id"]
    await money.buy(other, "theirs")
    seen: list[dict[str, Any]] = []
    token = ""
    while True:
        reply = await money.gateway.get(
            "/v1/wallet/payments",
            params={"page_size": 1, "page_token": token},
            headers=money.auth(user),
        )
        assert reply.status_code == 200, reply.text
        seen.extend(reply.json()["payments"])
        token = reply.json()["next_page_token"]
        if not token:
            break
    assert [(p["id"], p["status"]) for p in seen] == [(opened, "open"), (first, "paid")]
    assert seen[0]["credits"] == "550" and "paid_at" not in seen[0]
    assert (seen[1]["amount"], seen[1]["currency"], seen[1]["credits"]) == ("500", "usd", "100")
    assert seen[1]["receipt_url"] and seen[1]["paid_at"]
    bad = await money.gateway.get(
        "/v1/wallet/payments", params={"page_token": "nope"}, headers=money.auth(user)
    )
    assert bad.json()["error"]["code"] == "INVALID_PAGE_TOKEN"


async def test_falling_below_the_threshold_alerts_once_per_crossing(money: Money) -> None:
    user, friend = await money.user(), await money.user()
    alert = "/v1/wallet/alerts"
    invalid = await money.gateway.put(alert, json={"low_balance": -1}, headers=money.auth(user))
    assert invalid.json()["error"]["code"] == "INVALID_THRESHOLD"
    # Already below (100 < 150) when set: that is not a crossing.
    reply = await money.gateway.put(alert, json={"low_balance": 150}, headers=money.auth(user))
    assert reply.status_code == 200, reply.text
    assert reply.json()["low_balance"] == "150"
    assert (await money.wallet_of(user))["low_balance"] == "150"
    assert (await transfer(money, user, friend, 10, "t0")).status_code == 200
    assert await alerts(money, user) == 0
    await money.buy(user, "up")  # 190: at or above, armed again
    assert await alerts(money, user) == 0
    assert (await transfer(money, user, friend, 50, "t1")).status_code == 200  # 140
    assert await alerts(money, user) == 1
    assert (await transfer(money, user, friend, 10, "t2")).status_code == 200  # 130
    assert await alerts(money, user) == 1
    await money.buy(user, "up-again")  # 230
    # A hold crosses it too (available 230 -> 100).
    hold = holds_pb2.PlaceHoldRequest(user_id=user, amount=130, idempotency_key="h")
    hold.expires_at.FromDatetime(datetime.now(UTC) + timedelta(minutes=5))
    await money.wallet.holds().PlaceHold(hold, metadata=money.wallet.service())
    assert await alerts(money, user) == 2
    async with money.wallet.engine.connect() as conn:
        payloads = (
            await conn.execute(
                select(outbox.c.payload)
                .where(outbox.c.aggregate_id == user, outbox.c.type == "wallet.low_balance")
                .order_by(outbox.c.seq)
            )
        ).all()
    sent = []
    for (raw,) in payloads:
        payload = WalletLowBalance()
        Envelope.FromString(raw).payload.Unpack(payload)
        sent.append((payload.available, payload.threshold))
    assert sent == [(140, 150), (100, 150)]
    # The gateway's /v1/events streams it to the owner.
    assert "wallet.low_balance" in streamed_types([events_pb2.DESCRIPTOR])
    # Turned off: no more alerts.
    await money.gateway.put(alert, json={"low_balance": 0}, headers=money.auth(user))
    assert (await transfer(money, user, friend, 90, "t3")).status_code == 200
    assert await alerts(money, user) == 2
