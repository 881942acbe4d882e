"""Stripe, as far as klik calls it: customers, Checkout Sessions (one-off payments and
subscriptions), billing-portal sessions, subscriptions and refunds, with the events
they cause delivered as signed webhooks to klik's gateway.

    POST /v1/customers                          create a customer
    GET  /v1/customers/{id}
    POST /v1/checkout/sessions                  a Checkout Session; its `url` is a page here
    GET  /v1/checkout/sessions/{id}
    POST /v1/billing_portal/sessions            a portal session (its `url` is a page here)
    GET|POST|DELETE /v1/subscriptions/{id}      read, update (cancel_at_period_end), cancel
    POST /v1/refunds                            refund a payment intent (then `charge.refunded`)
    GET  /v1/payment_intents/{id}               `expand[]=latest_charge` for its charge
    GET  /receipts/{charge_id}                  a charge's receipt page (`receipt_url`)
    GET  /checkout/{id}                         the page a person pays (or cancels) on
    POST /checkout/{id}/pay | /checkout/{id}/cancel
    GET  /billing/{id}                          a portal session's page: the customer's
                                                subscriptions, each with Cancel buttons
    POST /billing/{id}/subscriptions/{sub}/cancel   `?at_period_end=true` or now

A line item's `price` may name any price id: the sandbox prices it at
SANDBOX_PRICE cents a month (`price_data` gives the amount itself). Paying a
subscription-mode session makes the subscription and its first invoice and sends
`checkout.session.completed`, `invoice.paid` and `customer.subscription.created`.

For tests (JSON body `{"fault": spec}` optional, `{"async": true}` on pay for a
delayed payment method that settles on `:settle`):

    POST /_sandbox/stripe/checkout/{id}:pay | :decline | :cancel | :settle
    POST /_sandbox/stripe/subscriptions/{id}:renew | :fail | :cancel
                                                renew: the next period's invoice paid
                                                (`invoice.paid`, the period advanced);
                                                fail: `invoice.payment_failed`;
                                                cancel: now, or `{"at_period_end": true}`
    POST /_sandbox/stripe/charges/{id}:dispute
    GET  /_sandbox/stripe/events                every event sent, with its delivery attempts
    POST /_sandbox/stripe/events/{id}:redeliver
    GET|POST|DELETE /_sandbox/stripe/faults     a webhook fault for every delivery

Requests are form-encoded (`a[b][0]=v`) as the stripe library sends them; an
`Idempotency-Key` replays the first answer. Webhooks carry `Stripe-Signature:
t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the shared secret
(`KLIK_STRIPE_WEBHOOK_SECRET`) and go to `KLIK_STRIPE_WEBHOOK_URL`; an attempt that is
not answered 2xx is retried later (backoff), as Stripe does.

Webhook fault spec, comma-separated: `duplicate=<N>` (N copies at once),
`reverse` (the events of one action in reverse order), `delay=<ms>` (before the
first attempt), `bad-signature` (signed with another secret), `stale` (signed
10 minutes ago), `down=<N>` (the first N attempts find the endpoint down)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.settings import SandboxSettings

API_VERSION = "2025-08-27.basil"
SIGNATURE_HEADER = "Stripe-Signature"
MAX_ATTEMPTS = 8
PERIOD_SECONDS = 30 * 24 * 3600
# What a `price` id (not `price_data`) costs here, a month, in cents.
SANDBOX_PRICE = 1000
_INDEX = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True)
class WebhookFault:
    duplicate: int = 1
    reverse: bool = False
    delay_ms: int = 0
    bad_signature: bool = False
    stale: bool = False
    down: int = 0


def parse_fault(spec: str) -> WebhookFault:
    fault: dict[str, Any] = {}
    for raw in spec.split(","):
        token = raw.strip().lower()
        if not token:
            continue
        name, _, value = token.partition("=")
        if name == "duplicate" and value.isdigit() and int(value) >= 1:
            fault["duplicate"] = int(value)
        elif name == "delay" and value.isdigit():
            fault["delay_ms"] = int(value)
        elif name == "down" and value.isdigit():
            fault["down"] = int(value)
        elif name in ("reverse", "out-of-order") and not value:
            fault["reverse"] = True
        elif name == "bad-signature" and not value:
            fault["bad_signature"] = True
        elif name == "stale" and not value:
            fault["stale"] = True
        else:
            raise ValueError(f"unknown webhook fault {token!r}")
    return WebhookFault(**fault)


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header of `payload` signed at `timestamp`."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0]=v`) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head, *_INDEX.findall("[" + rest)] if rest else [head]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    decoded: dict[str, Any] = _lists(root)
    return decoded


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


@dataclass
class Delivery:
    event: dict[str, Any]
    fault: WebhookFault
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False


class Stripe:
    """The sandbox's Stripe account: its objects, events and webhook deliveries."""

    def __init__(self, webhook_url: str = "", webhook_secret: str = "") -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.retry_base = 0.2  # seconds before the first retry; doubles each time
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.portals: dict[str, dict[str, Any]] = {}
        # Where this sandbox is served (receipt URLs); set from the first request.
        self.base_url = ""
        self.deliveries: dict[str, Delivery] = {}
        self.fault = WebhookFault()
        self._replies: dict[str, tuple[int, dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = itertools.count(1)
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_env(cls) -> Stripe:
        settings = SandboxSettings.from_env()
        return cls(settings.stripe_webhook_url, settings.stripe_webhook_secret)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._counter):06d}{secrets.token_hex(6)}"

    # ---- events and their webhooks ---------------------------------------------

    def emit(self, events: list[tuple[str, dict[str, Any]]], fault: WebhookFault | None) -> None:
        """Record the events of one action and deliver them (in reverse with `reverse`)."""
        fault = fault or self.fault
        made: list[str] = []
        for kind, obj in events:
            event_id = self.new_id("evt")
            event: dict[str, Any] = {
                "id": event_id,
                "object": "event",
                "api_version": API_VERSION,
                "created": int(time.time()),
                "type": kind,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "data": {"object": json.loads(json.dumps(obj))},
            }
            self.deliveries[event_id] = Delivery(event, fault)
            made.append(event_id)
        if fault.reverse:
            made.reverse()
        for event_id in made:
            for _ in range(fault.duplicate):
                self._spawn(self._deliver(self.deliveries[event_id]))

    def redeliver(self, event_id: str) -> bool:
        delivery = self.deliveries.get(event_id)
        if delivery is None:
            return False
        self._spawn(self._deliver(delivery, WebhookFault()))
        return True

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery, fault: WebhookFault | None = None) -> None:
        fault = fault or delivery.fault
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        payload = json.dumps(delivery.event).encode()
        pause = self.retry_base
        for attempt in range(1, MAX_ATTEMPTS + 1):
            record: dict[str, Any] = {"attempt": attempt, "at": time.time(), "status": None}
            delivery.attempts.append(record)
            down = sum(1 for a in delivery.attempts if a.get("error") == "endpoint down")
            if down < fault.down:
                record["error"] = "endpoint down"
            elif not self.webhook_url:
                record["error"] = "no webhook endpoint configured"
                return
            else:
                stamp = int(time.time()) - (600 if fault.stale else 0)
                secret = "whsec_forged" if fault.bad_signature else self.webhook_secret
                headers = {
                    "content-type": "application/json; charset=utf-8",
                    SIGNATURE_HEADER: sign(payload, secret, stamp),
                    "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                }
                try:
                    async with httpx.AsyncClient(timeout=10) as client:
                        reply = await client.post(
                            self.webhook_url, content=payload, headers=headers
                        )
                    record["status"] = reply.status_code
                    if 200 <= reply.status_code < 300:
                        delivery.delivered = True
                        return
                    if fault.bad_signature or fault.stale:
                        return  # it would fail the same way every time
                except httpx.HTTPError as error:
                    record["error"] = f"{type(error).__name__}: {error}"
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    def _http(self) -> httpx.AsyncClient:
        """One client for every delivery (making one per request costs a TLS context)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                # As Stripe does, a bounded number of deliveries at once.
                timeout=30,
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
            )
        return self._client

    async def idle(self) -> None:
        """Wait until every delivery in flight has finished (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- the objects ----------------------------------------------------------

    def customer(self, data: Mapping[str, Any]) -> dict[str, Any]:
        customer_id = self.new_id("cus")
        customer: dict[str, Any] = {
            "id": customer_id,
            "object": "customer",
            "created": int(time.time()),
            "email": data.get("email"),
            "name": data.get("name"),
            "metadata": dict(data.get("metadata") or {}),
            "livemode": False,
        }
        self.customers[customer_id] = customer
        return customer

    def checkout_session(self, data: Mapping[str, Any], base: str) -> dict[str, Any]:
        mode = data.get("mode", "payment")
        if mode not in ("payment", "subscription"):
            raise _Invalid(f"Invalid mode: {mode}", "mode")
        for name in ("success_url", "cancel_url"):
            if not data.get(name):
                raise _Invalid(f"Missing required param: {name}.", name)
        items = data.get("line_items")
        if not isinstance(items, list) or not items:
            raise _Invalid("Missing required param: line_items.", "line_items")
        total, currency, recurring = 0, "usd", None
        for item in items:
            price = item.get("price_data") or {}
            if item.get("price"):
                price = {
                    "id": item["price"],
                    "unit_amount": str(SANDBOX_PRICE),
                    "recurring": {"interval": "month"},
                }
            quantity = int(item.get("quantity", "1"))
            total += int(price.get("unit_amount", "0")) * quantity
            currency = price.get("currency", currency)
            recurring = price.get("recurring") or recurring
        customer = data.get("customer")
        if customer and customer not in self.customers:
            raise _Invalid(f"No such customer: '{customer}'", "customer")
        session_id = self.new_id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "customer": customer,
            "client_reference_id": data.get("client_reference_id"),
            "metadata": dict(data.get("metadata") or {}),
            "subscription_data": data.get("subscription_data") or {},
            "amount_total": total,
            "currency": currency,
            "success_url": data["success_url"],
            "cancel_url": data["cancel_url"],
            "url": f"{base}/checkout/{session_id}",
            "payment_intent": None,
            "subscription": None,
            "created": int(time.time()),
            "expires_at": int(time.time()) + 24 * 3600,
            "livemode": False,
            "_recurring": recurring,
            # Stripe puts `payment_intent_data.metadata` on the session's PaymentIntent.
            "_intent_metadata": dict((data.get("payment_intent_data") or {}).get("metadata") or {}),
        }
        self.sessions[session_id] = session
        return session

    def pay(
        self, session: dict[str, Any], *, settle_later: bool, fault: WebhookFault | None
    ) -> None:
        if session["status"] != "open":
            raise _Invalid(f"This Checkout Session is {session['status']}.", "session")
        session["status"] = "complete"
        events: list[tuple[str, dict[str, Any]]] = []
        if session["mode"] == "payment":
            intent = self._payment_intent(session, succeeded=not settle_later)
            session["payment_intent"] = intent["id"]
            session["payment_status"] = "unpaid" if settle_later else "paid"
            events.append(("checkout.session.completed", public(session)))
        else:
            subscription = self._subscription(session)
            session["subscription"] = subscription["id"]
            session["payment_status"] = "paid"
            events.append(("checkout.session.completed", public(session)))
            invoice = self._invoice(subscription, "subscription_create", paid=True)
            events.append(invoice[0])
            events.append(("customer.subscription.created", public(subscription)))
        self.emit(events, fault)

    def settle(self, session: dict[str, Any], fault: WebhookFault | None) -> None:
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            raise _Invalid("This Checkout Session has no payment waiting to settle.", "session")
        session["payment_status"] = "paid"
        intent = self.payment_intents[session["payment_intent"]]
        intent["status"] = "succeeded"
        self.emit([("checkout.session.async_payment_succeeded", public(session))], fault)

    def decline(self, session: dict[str, Any], fault: WebhookFault | None) -> None:
        """A declined card: the session stays open (the person may try again)."""
        if session["status"] != "open":
            raise _Invalid(f"This Checkout Session is {session['status']}.", "session")
        failed = {
            "id": self.new_id("pi"),
            "object": "payment_intent",
            "status": "requires_payment_method",
            "amount": session["amount_total"],
            "currency": session["currency"],
            "customer": session["customer"],
            "last_payment_error": {"code": "card_declined", "decline_code": "generic_decline"},
            "metadata": dict(session["_intent_metadata"]),
        }
        self.emit([("payment_intent.payment_failed", failed)], fault)

    def cancel(self, session: dict[str, Any], fault: WebhookFault | None) -> None:
        if session["status"] != "open":
            raise _Invalid(f"This Checkout Session is {session['status']}.", "session")
        session["status"] = "expired"
        self.emit([("checkout.session.expired", public(session))], fault)

    def _payment_intent(self, session: dict[str, Any], *, succeeded: bool) -> dict[str, Any]:
        intent = {
            "id": self.new_id("pi"),
            "object": "payment_intent",
            "status": "succeeded" if succeeded else "processing",
            "amount": session["amount_total"],
            "amount_refunded": 0,
            "currency": session["currency"],
            "customer": session["customer"],
            "latest_charge": self.new_id("ch"),
            "metadata": dict(session["_intent_metadata"]),
        }
        self.payment_intents[intent["id"]] = intent
        return intent

    def _subscription(self, session: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        subscription = {
            "id": self.new_id("sub"),
            "object": "subscription",
            "status": "active",
            "customer": session["customer"],
            "cancel_at_period_end": False,
            "metadata": {
                **session["metadata"],
                **dict(session["subscription_data"].get("metadata") or {}),
            },
            "current_period_start": now,
            "current_period_end": now + PERIOD_SECONDS,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self.new_id("si"),
                        "object": "subscription_item",
                        "current_period_start": now,
                        "current_period_end": now + PERIOD_SECONDS,
                        "price": {"recurring": session["_recurring"]},
                    }
                ],
            },
            "amount": session["amount_total"],
            "currency": session["currency"],
            "created": now,
        }
        self.subscriptions[subscription["id"]] = subscription
        return subscription

    def _invoice(
        self, subscription: dict[str, Any], reason: str, *, paid: bool
    ) -> list[tuple[str, dict[str, Any]]]:
        start, end = subscription["current_period_start"], subscription["current_period_end"]
        invoice = {
            "id": self.new_id("in"),
            "object": "invoice",
            "status": "paid" if paid else "open",
            "billing_reason": reason,
            "customer": subscription["customer"],
            "subscription": subscription["id"],
            "amount_paid": subscription["amount"] if paid else 0,
            "amount_due": subscription["amount"],
            "currency": subscription["currency"],
            "period_start": start,
            "period_end": end,
            "lines": {
                "object": "list",
                "data": [{"period": {"start": start, "end": end}}],
            },
            "parent": {
                "subscription_details": {
                    "subscription": subscription["id"],
                    "metadata": subscription["metadata"],
                }
            },
            "metadata": subscription["metadata"],
        }
        kind = "invoice.paid" if paid else "invoice.payment_failed"
        return [(kind, invoice), ("customer.subscription.updated", public(subscription))]

    def renew(
        self, subscription: dict[str, Any], *, paid: bool, fault: WebhookFault | None
    ) -> None:
        if subscription["status"] == "canceled":
            raise _Invalid("This subscription is canceled.", "subscription")
        if subscription["cancel_at_period_end"]:
            subscription["status"] = "canceled"
            self.emit([("customer.subscription.deleted", public(subscription))], fault)
            return
        subscription["current_period_start"] = subscription["current_period_end"]
        subscription["current_period_end"] += PERIOD_SECONDS
        for item in subscription["items"]["data"]:
            item["current_period_start"] = subscription["current_period_start"]
            item["current_period_end"] = subscription["current_period_end"]
        subscription["status"] = "active" if paid else "past_due"
        self.emit(self._invoice(subscription, "subscription_cycle", paid=paid), fault)

    def cancel_subscription(
        self,
        subscription: dict[str, Any],
        *,
        at_period_end: bool = False,
        fault: WebhookFault | None = None,
    ) -> None:
        """Cancel now (`customer.subscription.deleted`) or at the period's end
        (`customer.subscription.updated` with `cancel_at_period_end`; the next
        renewal then ends it)."""
        if subscription["status"] == "canceled":
            return
        if at_period_end:
            subscription["cancel_at_period_end"] = True
            self.emit([("customer.subscription.updated", public(subscription))], fault)
            return
        subscription["status"] = "canceled"
        subscription["canceled_at"] = int(time.time())
        self.emit([("customer.subscription.deleted", public(subscription))], fault)

    def refund(self, data: Mapping[str, Any]) -> dict[str, Any]:
        intent = self.payment_intents.get(str(data.get("payment_intent", "")))
        if intent is None:
            raise _Invalid("No such payment_intent.", "payment_intent")
        left = intent["amount"] - intent["amount_refunded"]
        amount = int(data.get("amount", left))
        if not 0 < amount <= left:
            raise _Invalid(f"Refund amount ({amount}) is greater than unrefunded amount.", "amount")
        intent["amount_refunded"] += amount
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "status": "succeeded",
            "metadata": dict(data.get("metadata") or {}),
        }
        self.refunds[refund["id"]] = refund
        self.emit([("charge.refunded", self._charge(intent))], None)
        return refund

    def dispute(self, intent: dict[str, Any], fault: WebhookFault | None) -> None:
        dispute = {
            "id": self.new_id("dp"),
            "object": "dispute",
            "amount": intent["amount"] - intent["amount_refunded"],
            "currency": intent["currency"],
            "charge": intent["latest_charge"],
            "payment_intent": intent["id"],
            "reason": "fraudulent",
            "status": "needs_response",
        }
        self.emit([("charge.dispute.created", dispute)], fault)

    def _charge(self, intent: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": intent["latest_charge"],
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": intent["amount_refunded"],
            "refunded": intent["amount_refunded"] >= intent["amount"],
            "currency": intent["currency"],
            "customer": intent["customer"],
            "payment_intent": intent["id"],
            "metadata": intent["metadata"],
            "receipt_url": f"{self.base_url}/receipts/{intent['latest_charge']}",
        }

    def intent(self, intent_id: str, expand: list[str]) -> dict[str, Any]:
        """A PaymentIntent as the API shows it; its charge inline with
        `expand=["latest_charge"]`."""
        found = self.payment_intents.get(intent_id)
        if found is None:
            raise LookupError("payment_intent", intent_id)
        shown = public(found)
        if "latest_charge" in expand:
            shown["latest_charge"] = self._charge(found)
        return shown

    def intent_by_charge(self, charge_id: str) -> dict[str, Any] | None:
        for intent in self.payment_intents.values():
            if intent["latest_charge"] == charge_id:
                return intent
        return None


class _Invalid(Exception):
    def __init__(self, message: str, param: str, status: int = 400) -> None:
        super().__init__(message)
        self.body = {"error": {"type": "invalid_request_error", "message": message, "param": param}}
        self.status = status


def public(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as the API shows it (without the sandbox's own `_` fields)."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def of(request: Request) -> Stripe:
    """The app's Stripe account, made from the environment on first use unless the
    app was given one (`app.state.stripe`)."""
    state = request.app.state
    if getattr(state, "stripe", None) is None:
        state.stripe = Stripe.from_env()
    stripe: Stripe = state.stripe
    return stripe


def _missing(kind: str, object_id: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": f"No such {kind}: '{object_id}'",
            }
        },
        404,
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _api(request: Request, make: Any) -> Response:
    """An API call: check the key, replay an Idempotency-Key, answer `make(data)`."""
    if not request.headers.get("authorization", "").startswith("Bearer sk_"):
        return JSONResponse(
            {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
            401,
        )
    stripe = of(request)
    stripe.base_url = stripe.base_url or _base(request)
    body = await request.body()
    data = decode_form(body) if request.method == "POST" else dict(request.query_params)
    key = request.headers.get("idempotency-key", "")
    replay_key = f"{request.method} {request.url.path} {key}"
    if key and replay_key in stripe._replies:
        status, reply = stripe._replies[replay_key]
        return JSONResponse(reply, status, headers={"idempotent-replayed": "true"})
    try:
        reply = public(make(data))
        status = 200
    except _Invalid as error:
        reply, status = error.body, error.status
    except LookupError as missing:
        return _missing(*missing.args)
    if key and status == 200:
        stripe._replies[replay_key] = (status, reply)
    return JSONResponse(reply, status)


def _find(table: Mapping[str, dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
    found = table.get(object_id)
    if found is None:
        raise LookupError(kind, object_id)
    return found


async def create_customer(request: Request) -> Response:
    return await _api(request, of(request).customer)


async def get_customer(request: Request) -> Response:
    stripe, customer_id = of(request), request.path_params["id"]
    return await _api(request, lambda _: _find(stripe.customers, "customer", customer_id))


async def create_session(request: Request) -> Response:
    stripe, base = of(request), _base(request)
    return await _api(request, lambda data: stripe.checkout_session(data, base))


async def get_session(request: Request) -> Response:
    stripe, session_id = of(request), request.path_params["id"]
    return await _api(request, lambda _: _find(stripe.sessions, "checkout.session", session_id))


async def create_portal(request: Request) -> Response:
    stripe, base = of(request), _base(request)

    def make(data: Mapping[str, Any]) -> dict[str, Any]:
        _find(stripe.customers, "customer", str(data.get("customer", "")))
        portal_id = stripe.new_id("bps")
        portal = {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": data["customer"],
            "return_url": data.get("return_url"),
            "url": f"{base}/billing/{portal_id}",
            "created": int(time.time()),
            "livemode": False,
        }
        stripe.portals[portal_id] = portal
        return portal

    return await _api(request, make)


async def subscription(request: Request) -> Response:
    stripe, sub_id = of(request), request.path_params["id"]

    def make(data: Mapping[str, Any]) -> dict[str, Any]:
        found = _find(stripe.subscriptions, "subscription", sub_id)
        if request.method == "DELETE":
            stripe.cancel_subscription(found)
        elif request.method == "POST" and "cancel_at_period_end" in data:
            found["cancel_at_period_end"] = data["cancel_at_period_end"] == "true"
            stripe.emit([("customer.subscription.updated", public(found))], None)
        return found

    return await _api(request, make)


async def create_refund(request: Request) -> Response:
    return await _api(request, of(request).refund)


async def get_payment_intent(request: Request) -> Response:
    stripe, intent_id = of(request), request.path_params["id"]
    expand = [v for k, v in request.query_params.multi_items() if k.startswith("expand")]
    return await _api(request, lambda _: stripe.intent(intent_id, expand))


async def receipt_page(request: Request) -> Response:
    intent = of(request).intent_by_charge(request.path_params["id"])
    if intent is None:
        return HTMLResponse("<h1>No such receipt</h1>", 404)
    amount = f"{intent['amount'] / 100:.2f} {intent['currency'].upper()}"
    refunded = f"{intent['amount_refunded'] / 100:.2f}"
    return HTMLResponse(
        f"<!doctype html><title>Sandbox receipt</title><h1>Receipt</h1>"
        f"<p>Paid {amount}; refunded {refunded}.</p>"
        "<p><small>This is klik's Stripe sandbox: no money moved.</small></p>"
    )


# ---- the page a person pays on --------------------------------------------------

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sandbox Checkout</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
<h1>Sandbox Checkout</h1>
<p>{description}</p>
<p><strong>{amount}</strong></p>
<form method="post" action="/checkout/{id}/pay"><button>Pay</button></form>
<form method="post" action="/checkout/{id}/cancel"><button>Cancel</button></form>
<p><small>This is klik's Stripe sandbox: no money moves.</small></p>
</body></html>"""


async def checkout_page(request: Request) -> Response:
    session = of(request).sessions.get(request.path_params["id"])
    if session is None:
        return HTMLResponse("<h1>No such checkout session</h1>", 404)
    if session["status"] != "open":
        return HTMLResponse(f"<h1>This checkout session is {session['status']}</h1>", 410)
    amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
    what = "Subscription" if session["mode"] == "subscription" else "One-off payment"
    page = _PAGE.format(id=session["id"], amount=amount, description=what)
    return HTMLResponse(page)


async def checkout_pay(request: Request) -> Response:
    stripe = of(request)
    session = stripe.sessions.get(request.path_params["id"])
    if session is None:
        return HTMLResponse("<h1>No such checkout session</h1>", 404)
    try:
        if request.url.path.endswith("/cancel"):
            stripe.cancel(session, None)
            return RedirectResponse(session["cancel_url"], 303)
        stripe.pay(session, settle_later=False, fault=None)
    except _Invalid as error:
        return HTMLResponse(f"<h1>{error}</h1>", 409)
    return RedirectResponse(
        session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]), 303
    )


# ---- the customer portal ----------------------------------------------------------

_PORTAL = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sandbox billing portal</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">
<h1>Sandbox billing portal</h1>
{rows}
<p><a href="{back}">Return</a></p>
<p><small>This is klik's Stripe sandbox: no money moves.</small></p>
</body></html>"""

_PORTAL_ROW = """<div><p>Subscription {id}: <strong>{status}</strong>{ending}</p>
<form method="post" action="/billing/{portal}/subscriptions/{id}/cancel?at_period_end=true">
<button>Cancel at period end</button></form>
<form method="post" action="/billing/{portal}/subscriptions/{id}/cancel">
<button>Cancel now</button></form></div>"""


def _portal_subscriptions(stripe: Stripe, portal: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in stripe.subscriptions.values() if s["customer"] == portal["customer"]]


async def portal_page(request: Request) -> Response:
    stripe = of(request)
    portal = stripe.portals.get(request.path_params["id"])
    if portal is None:
        return HTMLResponse("<h1>No such portal session</h1>", 404)
    rows = "".join(
        _PORTAL_ROW.format(
            id=s["id"],
            portal=portal["id"],
            status=s["status"],
            ending=" (ends at the period's end)" if s["cancel_at_period_end"] else "",
        )
        for s in _portal_subscriptions(stripe, portal)
    )
    return HTMLResponse(
        _PORTAL.format(rows=rows or "<p>No subscriptions.</p>", back=portal["return_url"])
    )


async def portal_cancel(request: Request) -> Response:
    stripe = of(request)
    portal = stripe.portals.get(request.path_params["id"])
    if portal is None:
        return HTMLResponse("<h1>No such portal session</h1>", 404)
    found = next(
        (s for s in _portal_subscriptions(stripe, portal) if s["id"] == request.path_params["sub"]),
        None,
    )
    if found is None:
        return HTMLResponse("<h1>No such subscription</h1>", 404)
    at_end = request.query_params.get("at_period_end") == "true"
    stripe.cancel_subscription(found, at_period_end=at_end)
    return RedirectResponse(f"/billing/{portal['id']}", 303)


# ---- the test controls -----------------------------------------------------------


async def _control_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


async def control_checkout(request: Request) -> Response:
    stripe = of(request)
    session_id, _, action = request.path_params["target"].partition(":")
    session = stripe.sessions.get(session_id)
    if session is None:
        return _missing("checkout.session", session_id)
    try:
        data = await _control_body(request)
        fault = parse_fault(data["fault"]) if data.get("fault") else None
        if action == "pay":
            stripe.pay(session, settle_later=bool(data.get("async")), fault=fault)
        elif action == "settle":
            stripe.settle(session, fault)
        elif action == "decline":
            stripe.decline(session, fault)
        elif action == "cancel":
            stripe.cancel(session, fault)
        else:
            return JSONResponse({"error": f"unknown action {action!r}"}, 404)
    except _Invalid as error:
        return JSONResponse(error.body, 409)
    except ValueError as error:
        return JSONResponse({"error": str(error)}, 400)
    return JSONResponse(public(session))


async def control_subscription(request: Request) -> Response:
    stripe = of(request)
    sub_id, _, action = request.path_params["target"].partition(":")
    found = stripe.subscriptions.get(sub_id)
    if found is None:
        return _missing("subscription", sub_id)
    try:
        data = await _control_body(request)
        fault = parse_fault(data["fault"]) if data.get("fault") else None
        if action == "cancel":
            at_end = bool(data.get("at_period_end"))
            stripe.cancel_subscription(found, at_period_end=at_end, fault=fault)
        elif action in ("renew", "fail"):
            stripe.renew(found, paid=action == "renew", fault=fault)
        else:
            return JSONResponse({"error": f"unknown action {action!r}"}, 404)
    except _Invalid as error:
        return JSONResponse(error.body, 409)
    except ValueError as error:
        return JSONResponse({"error": str(error)}, 400)
    return JSONResponse(public(found))


async def control_charge(request: Request) -> Response:
    stripe = of(request)
    charge_id, _, action = request.path_params["target"].partition(":")
    intent = stripe.intent_by_charge(charge_id)
    if intent is None or action != "dispute":
        return _missing("charge", charge_id)
    stripe.dispute(intent, None)
    return JSONResponse({"charge": charge_id, "disputed": True})


async def control_events(request: Request) -> Response:
    stripe = of(request)
    kind = request.query_params.get("type", "")
    return JSONResponse(
        {
            "events": [
                {**d.event, "delivered": d.delivered, "attempts": d.attempts}
                for d in stripe.deliveries.values()
                if not kind or d.event["type"] == kind
            ]
        }
    )


async def control_redeliver(request: Request) -> Response:
    event_id, _, action = request.path_params["target"].partition(":")
    if action != "redeliver" or not of(request).redeliver(event_id):
        return _missing("event", event_id)
    return JSONResponse({"id": event_id, "redelivering": True}, 202)


async def control_faults(request: Request) -> Response:
    stripe = of(request)
    if request.method == "DELETE":
        stripe.fault = WebhookFault()
        return Response(status_code=204)
    if request.method == "POST":
        try:
            data = await _control_body(request)
            stripe.fault = parse_fault(str(data.get("fault", "")))
        except ValueError as error:
            return JSONResponse({"error": str(error)}, 400)
        return JSONResponse({"fault": data.get("fault", "")}, 201)
    return JSONResponse({"fault": stripe.fault.__dict__})


ROUTES = [
    Route("/v1/customers", create_customer, methods=["POST"]),
    Route("/v1/customers/{id}", get_customer, methods=["GET"]),
    Route("/v1/checkout/sessions", create_session, methods=["POST"]),
    Route("/v1/checkout/sessions/{id}", get_session, methods=["GET"]),
    Route("/v1/billing_portal/sessions", create_portal, methods=["POST"]),
    Route("/v1/subscriptions/{id}", subscription, methods=["GET", "POST", "DELETE"]),
    Route("/v1/refunds", create_refund, methods=["POST"]),
    Route("/v1/payment_intents/{id}", get_payment_intent, methods=["GET"]),
    Route("/receipts/{id}", receipt_page, methods=["GET"]),
    Route("/checkout/{id}", checkout_page, methods=["GET"]),
    Route("/checkout/{id}/pay", checkout_pay, methods=["POST"]),
    Route("/checkout/{id}/cancel", checkout_pay, methods=["POST"]),
    Route("/billing/{id}", portal_page, methods=["GET"]),
    Route("/billing/{id}/subscriptions/{sub}/cancel", portal_cancel, methods=["POST"]),
    Route("/_sandbox/stripe/checkout/{target}", control_checkout, methods=["POST"]),
    Route("/_sandbox/stripe/subscriptions/{target}", control_subscription, methods=["POST"]),
    Route("/_sandbox/stripe/charges/{target}", control_charge, methods=["POST"]),
    Route("/_sandbox/stripe/events", control_events, methods=["GET"]),
    Route("/_sandbox/stripe/events/{target}", control_redeliver, methods=["POST"]),
    Route("/_sandbox/stripe/faults", control_faults, methods=["GET", "POST", "DELETE"]),
]
