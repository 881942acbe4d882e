"""gRPC servicers of the wallet service: proto ⇄ domain, and who may call what.

WalletService is public (end users; its admin tools role `admin`); HoldService is
internal and takes only the generation service's identity. Idempotency keys are
scoped to the caller: a user's keys and a service's keys never collide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import grpc

from kit import paging
from kit.callers import metadata_value
from kit.errors import InvalidArgument
from kit.paging import SeqCursor, TimeCursor
from kit.server import Resources
from kit.timestamps import timestamp, to_datetime
from klik.wallet.v1 import holds_pb2, holds_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from services.wallet.domain import CreditSummary, Entry, Hold, Payment, Subscription, Wallet
from services.wallet.ledger import Ledger
from services.wallet.payments import Payments
from services.wallet.plans import Plans
from services.wallet.usage import Usage

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

# The services that may place, capture and release holds.
HOLD_CALLERS = ("generation",)
TRANSACTIONS = SeqCursor("wallet.ListTransactions")
USER_TRANSACTIONS = SeqCursor("wallet.ListUserTransactions")
PAYMENTS = TimeCursor("wallet.ListPayments")
ADMIN = "admin"
# The metadata the gateway forwards Stripe's signature header as (forward_headers).
SIGNATURE_KEY = "stripe-signature"


def wallet_message(wallet: Wallet, credits: CreditSummary) -> wallet_pb2.Wallet:
    message = wallet_pb2.Wallet(
        user_id=wallet.user_id,
        balance=wallet.balance,
        held=wallet.held,
        available=wallet.available,
        updated_at=timestamp(wallet.updated_at),
        debt=wallet.debt,
        low_balance=wallet.low_balance,
        buckets=wallet_pb2.CreditBuckets(**credits.buckets),
    )
    if credits.next_expiry_at is not None:
        message.next_expiry.CopyFrom(
            wallet_pb2.CreditExpiry(
                amount=credits.next_expiry_amount, expires_at=timestamp(credits.next_expiry_at)
            )
        )
    return message


def transaction_message(entry: Entry) -> wallet_pb2.Transaction:
    return wallet_pb2.Transaction(
        id=entry.id,
        kind=entry.kind,
        amount=entry.amount,
        balance_after=entry.balance_after,
        reference=entry.reference,
        description=entry.description,
        created_at=timestamp(entry.created_at),
        debt_change=entry.debt_change,
        debt_after=entry.debt_after,
    )


def payment_message(payment: Payment) -> wallet_pb2.Payment:
    message = wallet_pb2.Payment(
        id=payment.id,
        status=payment.display_status,
        pack_id=payment.pack_id,
        credits=payment.credits,
        amount=payment.amount,
        currency=payment.currency,
        refunded_amount=payment.refunded_amount,
        credits_reversed=payment.credits_reversed,
        receipt_url=payment.receipt_url,
        created_at=timestamp(payment.created_at),
    )
    if payment.paid_at is not None:
        message.paid_at.CopyFrom(timestamp(payment.paid_at))
    return message


def subscription_message(subscription: Subscription) -> wallet_pb2.Subscription:
    message = wallet_pb2.Subscription(
        id=subscription.id,
        plan_id=subscription.plan_id,
        status=subscription.status,
        active=subscription.active,
        cancel_at_period_end=subscription.cancel_at_period_end,
    )
    if subscription.current_period_start is not None:
        message.current_period_start.CopyFrom(timestamp(subscription.current_period_start))
    if subscription.current_period_end is not None:
        message.current_period_end.CopyFrom(timestamp(subscription.current_period_end))
    return message


def hold_message(hold: Hold) -> holds_pb2.Hold:
    return holds_pb2.Hold(
        id=hold.id,
        user_id=hold.user_id,
        amount=hold.amount,
        status=hold.status,
        captured_amount=hold.captured_amount,
        expires_at=timestamp(hold.expires_at),
        created_at=timestamp(hold.created_at),
        reference=hold.reference,
    )


class WalletApi(wallet_pb2_grpc.WalletServiceServicer):
    """klik.wallet.v1.WalletService."""

    def __init__(
        self, resources: Resources, ledger: Ledger, payments: Payments, plans: Plans
    ) -> None:
        self.resources = resources
        self.ledger = ledger
        self.payments = payments
        self.plans = plans
        self.usage = Usage(resources.uow)

    async def GetWallet(
        self, request: wallet_pb2.GetWalletRequest, context: Context
    ) -> wallet_pb2.GetWalletResponse:
        caller = await self.resources.callers.user(context)
        wallet, credits = await self.ledger.credits(caller.user_id)
        return wallet_pb2.GetWalletResponse(wallet=wallet_message(wallet, credits))

    async def ListTransactions(
        self, request: wallet_pb2.ListTransactionsRequest, context: Context
    ) -> wallet_pb2.ListTransactionsResponse:
        caller = await self.resources.callers.user(context)
        rows, token = await self._transactions(
            TRANSACTIONS, caller.user_id, request.page_size, request.page_token
        )
        return wallet_pb2.ListTransactionsResponse(transactions=rows, next_page_token=token)

    async def _transactions(
        self, cursor: SeqCursor, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[wallet_pb2.Transaction], str]:
        size = paging.page_size(page_size)
        before = cursor.decode(page_token)
        page = await self.ledger.transactions(user_id, before=before, limit=size)
        rows = [transaction_message(entry) for entry in page.entries]
        return rows, cursor.encode(page.next_before)

    async def GetUserWallet(
        self, request: wallet_pb2.GetUserWalletRequest, context: Context
    ) -> wallet_pb2.GetUserWalletResponse:
        await self.resources.callers.user(context, ADMIN)
        wallet, credits = await self.ledger.credits(request.user_id, open_only=False)
        return wallet_pb2.GetUserWalletResponse(wallet=wallet_message(wallet, credits))

    async def ListUserTransactions(
        self, request: wallet_pb2.ListUserTransactionsRequest, context: Context
    ) -> wallet_pb2.ListUserTransactionsResponse:
        await self.resources.callers.user(context, ADMIN)
        await self.ledger.any_wallet(request.user_id)
        rows, token = await self._transactions(
            USER_TRANSACTIONS, request.user_id, request.page_size, request.page_token
        )
        return wallet_pb2.ListUserTransactionsResponse(transactions=rows, next_page_token=token)

    async def DebitCredits(
        self, request: wallet_pb2.DebitCreditsRequest, context: Context
    ) -> wallet_pb2.DebitCreditsResponse:
        caller = await self.resources.callers.user(context, ADMIN)
        entry = await self.ledger.debit(
            caller.subject,
            request.idempotency_key,
            user_id=request.user_id,
            amount=request.amount,
            reason=request.reason,
            debited_by=caller.user_id,
        )
        return wallet_pb2.DebitCreditsResponse(transaction=transaction_message(entry))

    async def RefundCharge(
        self, request: wallet_pb2.RefundChargeRequest, context: Context
    ) -> wallet_pb2.RefundChargeResponse:
        caller = await self.resources.callers.user(context, ADMIN)
        entry = await self.ledger.refund_charge(
            caller.subject,
            request.idempotency_key,
            user_id=request.user_id,
            transaction_id=request.transaction_id,
            reason=request.reason,
            refunded_by=caller.user_id,
        )
        return wallet_pb2.RefundChargeResponse(transaction=transaction_message(entry))

    async def RefundPayment(
        self, request: wallet_pb2.RefundPaymentRequest, context: Context
    ) -> wallet_pb2.RefundPaymentResponse:
        caller = await self.resources.callers.user(context, ADMIN)
        asked = await self.payments.refund(
            caller.user_id,
            request.idempotency_key,
            payment_id=request.payment_id,
            amount=request.amount,
            reason=request.reason,
        )
        return wallet_pb2.RefundPaymentResponse(
            refund_id=asked.refund.id,
            amount=asked.refund.amount,
            refund_status=asked.refund.status,
            payment=payment_message(asked.payment),
        )

    async def ListPayments(
        self, request: wallet_pb2.ListPaymentsRequest, context: Context
    ) -> wallet_pb2.ListPaymentsResponse:
        caller = await self.resources.callers.user(context)
        size = paging.page_size(request.page_size)
        after = PAYMENTS.decode(request.page_token)
        page = await self.payments.payments(caller.user_id, after=after, limit=size)
        return wallet_pb2.ListPaymentsResponse(
            payments=[payment_message(p) for p in page.payments],
            next_page_token=PAYMENTS.encode(page.next_after),
        )

    async def SetLowBalanceAlert(
        self, request: wallet_pb2.SetLowBalanceAlertRequest, context: Context
    ) -> wallet_pb2.SetLowBalanceAlertResponse:
        caller = await self.resources.callers.user(context)
        wallet, credits = await self.ledger.set_low_balance(caller.user_id, request.low_balance)
        return wallet_pb2.SetLowBalanceAlertResponse(wallet=wallet_message(wallet, credits))

    async def Transfer(
        self, request: wallet_pb2.TransferRequest, context: Context
    ) -> wallet_pb2.TransferResponse:
        caller = await self.resources.callers.user(context)
        entry = await self.ledger.transfer(
            caller.subject,
            request.idempotency_key,
            sender=caller.user_id,
            recipient=request.to_user_id,
            amount=request.amount,
            note=request.note,
        )
        return wallet_pb2.TransferResponse(transaction=transaction_message(entry))

    async def GrantCredits(
        self, request: wallet_pb2.GrantCreditsRequest, context: Context
    ) -> wallet_pb2.GrantCreditsResponse:
        caller = await self.resources.callers.user(context, ADMIN)
        entry = await self.ledger.grant(
            caller.subject,
            request.idempotency_key,
            user_id=request.user_id,
            amount=request.amount,
            reason=request.reason,
            granted_by=caller.user_id,
            expires_at=(
                to_datetime(request.expires_at) if request.HasField("expires_at") else None
            ),
        )
        return wallet_pb2.GrantCreditsResponse(transaction=transaction_message(entry))

    async def ListCreditPacks(
        self, request: wallet_pb2.ListCreditPacksRequest, context: Context
    ) -> wallet_pb2.ListCreditPacksResponse:
        return wallet_pb2.ListCreditPacksResponse(
            packs=[
                wallet_pb2.CreditPack(
                    id=p.id, credits=p.credits, price=p.price, currency=p.currency
                )
                for p in self.payments.packs()
            ]
        )

    async def CreateCheckout(
        self, request: wallet_pb2.CreateCheckoutRequest, context: Context
    ) -> wallet_pb2.CreateCheckoutResponse:
        caller = await self.resources.callers.user(context)
        made = await self.payments.checkout(
            caller.user_id,
            request.idempotency_key,
            pack_id=request.pack_id,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
        )
        return wallet_pb2.CreateCheckoutResponse(session_id=made.id, url=made.url)

    async def StripeWebhook(
        self, request: wallet_pb2.StripeWebhookRequest, context: Context
    ) -> wallet_pb2.StripeWebhookResponse:
        # Public: the signature over the exact body is the authentication.
        signature = metadata_value(context, SIGNATURE_KEY)
        await self.payments.webhook(request.body.data, signature)
        return wallet_pb2.StripeWebhookResponse()

    # ---- Plans ----

    async def ListPlans(
        self, request: wallet_pb2.ListPlansRequest, context: Context
    ) -> wallet_pb2.ListPlansResponse:
        return wallet_pb2.ListPlansResponse(
            plans=[
                wallet_pb2.Plan(
                    id=p.id,
                    price_id=p.price_id,
                    monthly_allowance=p.allowance,
                    premium_models=p.premium,
                )
                for p in self.plans.plans()
            ]
        )

    async def Subscribe(
        self, request: wallet_pb2.SubscribeRequest, context: Context
    ) -> wallet_pb2.SubscribeResponse:
        caller = await self.resources.callers.user(context)
        made = await self.plans.subscribe(
            caller.user_id,
            request.idempotency_key,
            plan_id=request.plan_id,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
        )
        return wallet_pb2.SubscribeResponse(session_id=made.id, url=made.url)

    async def GetSubscription(
        self, request: wallet_pb2.GetSubscriptionRequest, context: Context
    ) -> wallet_pb2.GetSubscriptionResponse:
        caller = await self.resources.callers.user(context)
        found = await self.plans.subscription(caller.user_id)
        return wallet_pb2.GetSubscriptionResponse(subscription=subscription_message(found))

    async def CreateBillingPortalSession(
        self, request: wallet_pb2.CreateBillingPortalSessionRequest, context: Context
    ) -> wallet_pb2.CreateBillingPortalSessionResponse:
        caller = await self.resources.callers.user(context)
        url = await self.plans.portal(caller.user_id, request.return_url)
        return wallet_pb2.CreateBillingPortalSessionResponse(url=url)

    # ---- usage summaries ----

    async def GetUsage(
        self, request: wallet_pb2.GetUsageRequest, context: Context
    ) -> wallet_pb2.GetUsageResponse:
        caller = await self.resources.callers.user(context)
        days = await self.usage.of_user(caller.user_id, request.days, request.group_by)
        return wallet_pb2.GetUsageResponse(
            days=[
                wallet_pb2.UsageDay(
                    date=day.day.isoformat(),
                    credits=day.credits,
                    by_kind=_kind_credits(day.by_kind),
                )
                for day in days
            ]
        )

    async def GetWalletSummary(
        self, request: wallet_pb2.GetWalletSummaryRequest, context: Context
    ) -> wallet_pb2.GetWalletSummaryResponse:
        await self.resources.callers.user(context, ADMIN)
        days = await self.usage.summary(request.days)
        return wallet_pb2.GetWalletSummaryResponse(
            days=[
                wallet_pb2.WalletSummaryDay(
                    date=day.day.isoformat(),
                    credits_spent=sum(day.spent_by_kind.values()),
                    spent_by_kind=_kind_credits(day.spent_by_kind),
                    revenue=[
                        wallet_pb2.CurrencyAmount(currency=currency, amount=amount)
                        for currency, amount in day.revenue.items()
                    ],
                    credits_granted=day.granted,
                    credits_purchased=day.purchased,
                )
                for day in days
            ]
        )


def _kind_credits(by_kind: dict[str, int]) -> list[wallet_pb2.KindCredits]:
    return [wallet_pb2.KindCredits(kind=kind, credits=credits) for kind, credits in by_kind.items()]


class HoldApi(holds_pb2_grpc.HoldServiceServicer):
    """klik.wallet.v1.HoldService: internal, service identities only."""

    def __init__(self, resources: Resources, ledger: Ledger) -> None:
        self.resources = resources
        self.ledger = ledger

    async def PlaceHold(
        self, request: holds_pb2.PlaceHoldRequest, context: Context
    ) -> holds_pb2.PlaceHoldResponse:
        caller = await self.resources.callers.service(context, *HOLD_CALLERS)
        if not request.HasField("expires_at"):
            raise InvalidArgument(
                "INVALID_ARGUMENT", "expires_at is required", details={"field": "expires_at"}
            )
        hold = await self.ledger.place_hold(
            caller.subject,
            request.idempotency_key,
            user_id=request.user_id,
            amount=request.amount,
            expires_at=to_datetime(request.expires_at),
            reference=request.reference,
            description=request.description,
        )
        return holds_pb2.PlaceHoldResponse(hold=hold_message(hold))

    async def CaptureHold(
        self, request: holds_pb2.CaptureHoldRequest, context: Context
    ) -> holds_pb2.CaptureHoldResponse:
        caller = await self.resources.callers.service(context, *HOLD_CALLERS)
        captured = await self.ledger.capture_hold(
            caller.subject, request.idempotency_key, hold_id=request.hold_id, amount=request.amount
        )
        reply = holds_pb2.CaptureHoldResponse(hold=hold_message(captured.hold))
        if captured.entry is not None:
            reply.transaction.CopyFrom(transaction_message(captured.entry))
        return reply

    async def ReleaseHold(
        self, request: holds_pb2.ReleaseHoldRequest, context: Context
    ) -> holds_pb2.ReleaseHoldResponse:
        caller = await self.resources.callers.service(context, *HOLD_CALLERS)
        hold = await self.ledger.release_hold(
            caller.subject, request.idempotency_key, hold_id=request.hold_id
        )
        return holds_pb2.ReleaseHoldResponse(hold=hold_message(hold))


def register(
    server: grpc.aio.Server,
    resources: Resources,
    ledger: Ledger,
    payments: Payments,
    plans: Plans,
) -> Sequence[str]:
    """Add the servicers, over the replica's ledger, payments and plans (service.py)."""
    wallet_pb2_grpc.add_WalletServiceServicer_to_server(
        WalletApi(resources, ledger, payments, plans), server
    )
    holds_pb2_grpc.add_HoldServiceServicer_to_server(HoldApi(resources, ledger), server)
    return (
        wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name,
        holds_pb2.DESCRIPTOR.services_by_name["HoldService"].full_name,
    )
