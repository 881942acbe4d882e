"""gRPC servicers of the wallet service: proto ⇄ domain, and who may call what.

WalletService is public (end users; GrantCredits admins only); HoldService is
internal and takes only the generation service's identity. Idempotency keys are
scoped to the caller: a user's keys and a service's keys never collide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import grpc

from kit import paging
from kit.errors import InvalidArgument
from kit.paging import SeqCursor
from kit.server import Resources
from kit.timestamps import timestamp, to_datetime
from klik.wallet.v1 import holds_pb2, holds_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from services.wallet.domain import Entry, Hold, Wallet
from services.wallet.ledger import Ledger
from services.wallet.payments import Payments

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

# The services that may place, capture and release holds.
HOLD_CALLERS = ("generation",)
TRANSACTIONS = SeqCursor("wallet.ListTransactions")
# The metadata the gateway forwards Stripe's signature header as (forward_headers).
SIGNATURE_KEY = "stripe-signature"


def wallet_message(wallet: Wallet) -> wallet_pb2.Wallet:
    return wallet_pb2.Wallet(
        user_id=wallet.user_id,
        balance=wallet.balance,
        held=wallet.held,
        available=wallet.available,
        updated_at=timestamp(wallet.updated_at),
    )


def transaction_message(entry: Entry) -> wallet_pb2.Transaction:
    return wallet_pb2.Transaction(
        id=entry.id,
        kind=entry.kind,
        amount=entry.amount,
        balance_after=entry.balance_after,
        reference=entry.reference,
        description=entry.description,
        created_at=timestamp(entry.created_at),
    )


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

    def __init__(self, resources: Resources, ledger: Ledger, payments: Payments) -> None:
        self.resources = resources
        self.ledger = ledger
        self.payments = payments

    async def GetWallet(
        self, request: wallet_pb2.GetWalletRequest, context: Context
    ) -> wallet_pb2.GetWalletResponse:
        caller = await self.resources.callers.user(context)
        wallet = await self.ledger.wallet(caller.user_id)
        return wallet_pb2.GetWalletResponse(wallet=wallet_message(wallet))

    async def ListTransactions(
        self, request: wallet_pb2.ListTransactionsRequest, context: Context
    ) -> wallet_pb2.ListTransactionsResponse:
        caller = await self.resources.callers.user(context)
        size = paging.page_size(request.page_size)
        before = TRANSACTIONS.decode(request.page_token)
        page = await self.ledger.transactions(caller.user_id, before=before, limit=size)
        return wallet_pb2.ListTransactionsResponse(
            transactions=[transaction_message(entry) for entry in page.entries],
            next_page_token=TRANSACTIONS.encode(page.next_before),
        )

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
        caller = await self.resources.callers.user(context, "admin")
        entry = await self.ledger.grant(
            caller.subject,
            request.idempotency_key,
            user_id=request.user_id,
            amount=request.amount,
            reason=request.reason,
            granted_by=caller.user_id,
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
        signature = next(
            (str(v) for k, v in context.invocation_metadata() or () if k == SIGNATURE_KEY), ""
        )
        await self.payments.webhook(request.body.data, signature)
        return wallet_pb2.StripeWebhookResponse()


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
    server: grpc.aio.Server, resources: Resources, ledger: Ledger, payments: Payments
) -> Sequence[str]:
    """Add the servicers, over the replica's ledger and payments (service.py)."""
    wallet_pb2_grpc.add_WalletServiceServicer_to_server(
        WalletApi(resources, ledger, payments), server
    )
    holds_pb2_grpc.add_HoldServiceServicer_to_server(HoldApi(resources, ledger), server)
    return (
        wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name,
        holds_pb2.DESCRIPTOR.services_by_name["HoldService"].full_name,
    )
