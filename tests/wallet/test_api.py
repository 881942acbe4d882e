"""The wallet's RPCs through real gRPC against the real service: what each returns,
who may call it, and every error reason the protos document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kit.paging import encode_cursor
from klik.wallet.v1 import holds_pb2, wallet_pb2
from tests.helpers import wait_for
from tests.tokens import bearer
from tests.wallet.conftest import WalletStack, new_user
from tests.wallet.support import books, failure

OK_KEYS = iter(range(10**9))


def key() -> str:
    return f"key-{next(OK_KEYS)}"


def later(seconds: float = 600) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(seconds=seconds))
    return stamp


async def balance(stack: WalletStack, user_id: str) -> tuple[int, int, int]:
    reply = await stack.wallet().GetWallet(
        wallet_pb2.GetWalletRequest(), metadata=stack.user(user_id), timeout=5
    )
    return reply.wallet.balance, reply.wallet.held, reply.wallet.available


async def place(
    stack: WalletStack, user_id: str, amount: int, *, seconds: float = 600, idem: str = ""
) -> holds_pb2.Hold:
    reply = await stack.holds().PlaceHold(
        holds_pb2.PlaceHoldRequest(
            user_id=user_id,
            amount=amount,
            idempotency_key=idem or key(),
            expires_at=later(seconds),
            reference="job-1",
            description="an image",
        ),
        metadata=stack.service(),
        timeout=5,
    )
    placed: holds_pb2.Hold = reply.hold
    return placed


async def test_a_new_wallet_holds_the_signup_bonus(wallet: WalletStack) -> None:
    alice = new_user()
    await wallet.register(alice)
    reply = await wallet.wallet().GetWallet(
        wallet_pb2.GetWalletRequest(), metadata=wallet.user(alice), timeout=5
    )
    assert (reply.wallet.user_id, reply.wallet.balance, reply.wallet.held) == (alice, 100, 0)
    assert reply.wallet.available == 100
    assert reply.wallet.updated_at.seconds > 0
    listed = await wallet.wallet().ListTransactions(
        wallet_pb2.ListTransactionsRequest(), metadata=wallet.user(alice), timeout=5
    )
    assert [(t.kind, t.amount, t.balance_after) for t in listed.transactions] == [
        ("signup_bonus", 100, 100)
    ]
    assert listed.next_page_token == ""


async def test_get_wallet_needs_a_wallet_and_a_token(wallet: WalletStack) -> None:
    stub = wallet.wallet()
    nobody = await failure(
        stub.GetWallet(wallet_pb2.GetWalletRequest(), metadata=wallet.user(new_user()), timeout=5)
    )
    assert (nobody.code, nobody.reason) == (grpc.StatusCode.NOT_FOUND, "WALLET_NOT_FOUND")
    anonymous = await failure(stub.GetWallet(wallet_pb2.GetWalletRequest(), timeout=5))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED
    forged = await failure(
        stub.GetWallet(wallet_pb2.GetWalletRequest(), metadata=bearer("not.a.jwt"), timeout=5)
    )
    assert (forged.code, forged.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    as_service = await failure(
        stub.GetWallet(wallet_pb2.GetWalletRequest(), metadata=wallet.service(), timeout=5)
    )
    assert (as_service.code, as_service.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "USER_TOKEN_REQUIRED",
    )


async def test_transfer_moves_credits_once_per_key(wallet: WalletStack) -> None:
    alice, bob = new_user(), new_user()
    await wallet.register(alice, bob)
    stub = wallet.wallet()
    request = wallet_pb2.TransferRequest(
        to_user_id=bob, amount=30, idempotency_key="pay-bob", note="lunch"
    )
    first = await stub.Transfer(request, metadata=wallet.user(alice), timeout=5)
    out = first.transaction
    assert (out.kind, out.amount, out.balance_after, out.reference, out.description) == (
        "transfer_out",
        -30,
        70,
        bob,
        "lunch",
    )
    assert await balance(wallet, alice) == (70, 0, 70)
    assert await balance(wallet, bob) == (130, 0, 130)
    bobs = await stub.ListTransactions(
        wallet_pb2.ListTransactionsRequest(), metadata=wallet.user(bob), timeout=5
    )
    into = bobs.transactions[0]
    assert (into.kind, into.amount, into.balance_after, into.reference, into.description) == (
        "transfer_in",
        30,
        130,
        alice,
        "lunch",
    )

    # The same key and body: the first result, no second transfer.
    again = await stub.Transfer(request, metadata=wallet.user(alice), timeout=5)
    assert again.transaction == out
    assert await balance(wallet, alice) == (70, 0, 70)
    # The same key with another body is refused.
    changed = wallet_pb2.TransferRequest(to_user_id=bob, amount=31, idempotency_key="pay-bob")
    reused = await failure(stub.Transfer(changed, metadata=wallet.user(alice), timeout=5))
    assert (reused.code, reused.reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    # Keys are the caller's: bob's "pay-bob" is another key.
    back = wallet_pb2.TransferRequest(to_user_id=alice, amount=5, idempotency_key="pay-bob")
    await stub.Transfer(back, metadata=wallet.user(bob), timeout=5)
    assert await balance(wallet, alice) == (75, 0, 75)
    report = await books(wallet.engine, [alice, bob])
    assert report.violations == []
    assert report.total == 200


async def test_transfer_refusals_move_nothing(wallet: WalletStack) -> None:
    alice, bob, gone = new_user(), new_user(), new_user()
    await wallet.register(alice, bob, gone)
    await wallet.delete(gone)

    async def closed() -> bool:
        row = await wallet.wallet_row(gone)
        return row is not None and row.closed_at is not None

    await wait_for(closed, 30, message="wallet closed")
    stub = wallet.wallet()
    me = wallet.user(alice)

    async def refused(to: str, amount: int, idem: str = "k") -> tuple[grpc.StatusCode, str]:
        request = wallet_pb2.TransferRequest(to_user_id=to, amount=amount, idempotency_key=idem)
        found = await failure(stub.Transfer(request, metadata=me, timeout=5))
        return found.code, found.reason

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert await refused(bob, 0) == (invalid, "INVALID_AMOUNT")
    assert await refused(bob, -5) == (invalid, "INVALID_AMOUNT")
    assert await refused(alice, 5) == (invalid, "SELF_TRANSFER")
    assert await refused(bob, 5, idem="") == (invalid, "INVALID_ARGUMENT")
    assert await refused("", 5) == (invalid, "INVALID_ARGUMENT")
    assert await refused(bob, 5, idem="k" * 201) == (invalid, "INVALID_ARGUMENT")
    long_note = await failure(
        stub.Transfer(
            wallet_pb2.TransferRequest(
                to_user_id=bob, amount=1, idempotency_key="n", note="x" * 1001
            ),
            metadata=me,
            timeout=5,
        )
    )
    assert (long_note.code, long_note.reason) == (invalid, "INVALID_ARGUMENT")
    not_found = grpc.StatusCode.NOT_FOUND
    assert await refused(new_user(), 5) == (not_found, "WALLET_NOT_FOUND")
    assert await refused(gone, 5) == (not_found, "WALLET_NOT_FOUND")
    assert await refused("x" * 500, 5) == (not_found, "WALLET_NOT_FOUND")
    poor = await failure(
        stub.Transfer(
            wallet_pb2.TransferRequest(to_user_id=bob, amount=101, idempotency_key="k"),
            metadata=me,
            timeout=5,
        )
    )
    assert (poor.code, poor.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS")
    assert poor.metadata == {"required": "101", "available": "100"}
    no_wallet = await failure(
        stub.Transfer(
            wallet_pb2.TransferRequest(to_user_id=bob, amount=1, idempotency_key="k"),
            metadata=wallet.user(new_user()),
            timeout=5,
        )
    )
    assert (no_wallet.code, no_wallet.reason) == (not_found, "WALLET_NOT_FOUND")
    # A refused request keeps no key: the same key works once the request is valid.
    ok = await stub.Transfer(
        wallet_pb2.TransferRequest(to_user_id=bob, amount=100, idempotency_key="k"),
        metadata=me,
        timeout=5,
    )
    assert ok.transaction.balance_after == 0
    assert await balance(wallet, bob) == (200, 0, 200)


async def test_grant_credits_is_for_admins_only(wallet: WalletStack) -> None:
    alice, admin = new_user(), new_user()
    await wallet.register(alice)
    stub = wallet.wallet()
    request = wallet_pb2.GrantCreditsRequest(
        user_id=alice, amount=50, reason="contest prize", idempotency_key="prize-1"
    )
    for role in ("user", "premium", "moderator"):
        denied = await failure(
            stub.GrantCredits(request, metadata=wallet.user(admin, role), timeout=5)
        )
        assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    as_service = await failure(stub.GrantCredits(request, metadata=wallet.service(), timeout=5))
    assert (as_service.code, as_service.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "USER_TOKEN_REQUIRED",
    )
    assert await balance(wallet, alice) == (100, 0, 100)

    as_admin = wallet.user(admin, "admin")
    granted = (await stub.GrantCredits(request, metadata=as_admin, timeout=5)).transaction
    assert (granted.kind, granted.amount, granted.balance_after) == ("grant", 50, 150)
    assert (granted.reference, granted.description) == (admin, "contest prize")
    replay = await stub.GrantCredits(request, metadata=as_admin, timeout=5)
    assert replay.transaction == granted
    assert await balance(wallet, alice) == (150, 0, 150)

    other = wallet_pb2.GrantCreditsRequest(
        user_id=alice, amount=51, reason="contest prize", idempotency_key="prize-1"
    )
    reused = await failure(stub.GrantCredits(other, metadata=as_admin, timeout=5))
    assert (reused.code, reused.reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    unknown = await failure(
        stub.GrantCredits(
            wallet_pb2.GrantCreditsRequest(user_id=new_user(), amount=5, idempotency_key="u"),
            metadata=as_admin,
            timeout=5,
        )
    )
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.NOT_FOUND, "WALLET_NOT_FOUND")
    for amount in (0, -1, 10**13):
        bad = await failure(
            stub.GrantCredits(
                wallet_pb2.GrantCreditsRequest(user_id=alice, amount=amount, idempotency_key="b"),
                metadata=as_admin,
                timeout=5,
            )
        )
        assert (bad.code, bad.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_AMOUNT")
    missing_key = await failure(
        stub.GrantCredits(
            wallet_pb2.GrantCreditsRequest(user_id=alice, amount=5), metadata=as_admin, timeout=5
        )
    )
    assert missing_key.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_transactions_pages_newest_first(wallet: WalletStack) -> None:
    alice, admin = new_user(), wallet.user(new_user(), "admin")
    await wallet.register(alice)
    for i in range(1, 45):
        await wallet.wallet().GrantCredits(
            wallet_pb2.GrantCreditsRequest(user_id=alice, amount=i, idempotency_key=f"g{i}"),
            metadata=admin,
            timeout=5,
        )
    stub, me = wallet.wallet(), wallet.user(alice)
    seen: list[int] = []
    token = ""
    sizes = []
    while True:
        page = await stub.ListTransactions(
            wallet_pb2.ListTransactionsRequest(page_token=token), metadata=me, timeout=5
        )
        sizes.append(len(page.transactions))
        seen.extend(t.amount for t in page.transactions)
        token = page.next_page_token
        if not token:
            break
    assert sizes == [20, 20, 5]
    assert seen == [*range(44, 0, -1), 100]  # newest first; the signup bonus last
    balances = [100 + sum(range(1, i + 1)) for i in range(44, -1, -1)]
    everything = await stub.ListTransactions(
        wallet_pb2.ListTransactionsRequest(page_size=1000), metadata=me, timeout=5
    )
    assert [t.balance_after for t in everything.transactions] == balances
    assert everything.next_page_token == ""
    one = await stub.ListTransactions(
        wallet_pb2.ListTransactionsRequest(page_size=1), metadata=me, timeout=5
    )
    assert [t.amount for t in one.transactions] == [44] and one.next_page_token
    # Another user's list is their own.
    bob = new_user()
    empty = await stub.ListTransactions(
        wallet_pb2.ListTransactionsRequest(), metadata=wallet.user(bob), timeout=5
    )
    assert list(empty.transactions) == []
    for token in ("garbage!", encode_cursor("auth.ListUsers", {"seq": 3}), "e30"):
        bad = await failure(
            stub.ListTransactions(
                wallet_pb2.ListTransactionsRequest(page_token=token), metadata=me, timeout=5
            )
        )
        assert (bad.code, bad.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    negative = await failure(
        stub.ListTransactions(
            wallet_pb2.ListTransactionsRequest(page_size=-1), metadata=me, timeout=5
        )
    )
    assert negative.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_hold_rpcs_take_the_generation_service_only(wallet: WalletStack) -> None:
    alice = new_user()
    await wallet.register(alice)
    stub = wallet.holds()
    request = holds_pb2.PlaceHoldRequest(
        user_id=alice, amount=10, idempotency_key="h", expires_at=later()
    )
    capture = holds_pb2.CaptureHoldRequest(hold_id="h", amount=1, idempotency_key="c")
    release = holds_pb2.ReleaseHoldRequest(hold_id="h", idempotency_key="r")
    for metadata in (
        wallet.user(alice),
        wallet.user(alice, "admin"),
        wallet.service("content"),
    ):
        for call in (
            stub.PlaceHold(request, metadata=metadata, timeout=5),
            stub.CaptureHold(capture, metadata=metadata, timeout=5),
            stub.ReleaseHold(release, metadata=metadata, timeout=5),
        ):
            refused = await failure(call)
            assert (refused.code, refused.reason) == (
                grpc.StatusCode.PERMISSION_DENIED,
                "SERVICE_IDENTITY_REQUIRED",
            )
    anonymous = await failure(stub.PlaceHold(request, timeout=5))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED
    # A token the generation service made for another callee is no good here.
    elsewhere = bearer(wallet.identities["generation"].token("auth"))
    misdirected = await failure(stub.PlaceHold(request, metadata=elsewhere, timeout=5))
    assert (misdirected.code, misdirected.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_TOKEN",
    )
    assert await balance(wallet, alice) == (100, 0, 100)
    placed = await stub.PlaceHold(request, metadata=wallet.service("generation"), timeout=5)
    assert placed.hold.status == "open"
    assert await balance(wallet, alice) == (100, 10, 90)


async def test_capture_charges_at_most_the_hold_and_releases_the_rest(
    wallet: WalletStack,
) -> None:
    alice = new_user()
    await wallet.register(alice)
    stub, generation = wallet.holds(), wallet.service()
    hold = await place(wallet, alice, 40)
    assert (hold.user_id, hold.amount, hold.status, hold.captured_amount) == (alice, 40, "open", 0)
    assert (hold.reference, hold.expires_at.seconds > hold.created_at.seconds) == ("job-1", True)
    assert await balance(wallet, alice) == (100, 40, 60)

    request = holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=25, idempotency_key="cap-1")
    captured = await stub.CaptureHold(request, metadata=generation, timeout=5)
    assert (captured.hold.status, captured.hold.captured_amount) == ("captured", 25)
    charge = captured.transaction
    assert (charge.kind, charge.amount, charge.balance_after) == ("charge", -25, 75)
    assert (charge.reference, charge.description) == (hold.id, "an image")
    assert await balance(wallet, alice) == (75, 0, 75)

    assert await stub.CaptureHold(request, metadata=generation, timeout=5) == captured
    other = holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=26, idempotency_key="cap-1")
    reused = await failure(stub.CaptureHold(other, metadata=generation, timeout=5))
    assert (reused.code, reused.reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    twice = holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=25, idempotency_key="cap-2")
    again = await failure(stub.CaptureHold(twice, metadata=generation, timeout=5))
    assert (again.code, again.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_ALREADY_CAPTURED",
    )
    release = holds_pb2.ReleaseHoldRequest(hold_id=hold.id, idempotency_key="rel-1")
    late = await failure(stub.ReleaseHold(release, metadata=generation, timeout=5))
    assert (late.code, late.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_ALREADY_CAPTURED",
    )

    # More than the hold: clamped to it.
    big = await place(wallet, alice, 30)
    over = await stub.CaptureHold(
        holds_pb2.CaptureHoldRequest(hold_id=big.id, amount=1000, idempotency_key="cap-3"),
        metadata=generation,
        timeout=5,
    )
    assert (over.hold.captured_amount, over.transaction.amount) == (30, -30)
    assert await balance(wallet, alice) == (45, 0, 45)
    # Zero: nothing charged, no ledger row, the hold is released in full.
    free = await place(wallet, alice, 20)
    zero = await stub.CaptureHold(
        holds_pb2.CaptureHoldRequest(hold_id=free.id, amount=0, idempotency_key="cap-4"),
        metadata=generation,
        timeout=5,
    )
    assert (zero.hold.status, zero.hold.captured_amount) == ("captured", 0)
    assert not zero.HasField("transaction")
    assert await balance(wallet, alice) == (45, 0, 45)
    negative = await failure(
        stub.CaptureHold(
            holds_pb2.CaptureHoldRequest(hold_id=free.id, amount=-1, idempotency_key="cap-5"),
            metadata=generation,
            timeout=5,
        )
    )
    assert (negative.code, negative.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_AMOUNT")
    report = await books(wallet.engine, [alice])
    assert report.violations == [] and report.charged == 55


async def test_release_gives_the_credits_back_once(wallet: WalletStack) -> None:
    alice = new_user()
    await wallet.register(alice)
    stub, generation = wallet.holds(), wallet.service()
    hold = await place(wallet, alice, 70)
    assert await balance(wallet, alice) == (100, 70, 30)
    request = holds_pb2.ReleaseHoldRequest(hold_id=hold.id, idempotency_key="rel-1")
    released = (await stub.ReleaseHold(request, metadata=generation, timeout=5)).hold
    assert (released.status, released.captured_amount) == ("released", 0)
    assert await balance(wallet, alice) == (100, 0, 100)
    assert (await stub.ReleaseHold(request, metadata=generation, timeout=5)).hold == released
    # Another key: nothing left to release, the hold comes back as it is.
    again = holds_pb2.ReleaseHoldRequest(hold_id=hold.id, idempotency_key="rel-2")
    assert (await stub.ReleaseHold(again, metadata=generation, timeout=5)).hold.status == (
        "released"
    )
    assert await balance(wallet, alice) == (100, 0, 100)
    capture = holds_pb2.CaptureHoldRequest(hold_id=hold.id, amount=5, idempotency_key="cap")
    refused = await failure(stub.CaptureHold(capture, metadata=generation, timeout=5))
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "HOLD_ALREADY_RELEASED",
    )
    other = holds_pb2.ReleaseHoldRequest(hold_id=new_user(), idempotency_key="rel-1")
    reused = await failure(stub.ReleaseHold(other, metadata=generation, timeout=5))
    assert (reused.code, reused.reason) == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")


async def test_place_hold_refusals_reserve_nothing(wallet: WalletStack) -> None:
    alice = new_user()
    await wallet.register(alice)
    stub, generation = wallet.holds(), wallet.service()

    async def refused(**fields: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
        values: dict[str, object] = {
            "user_id": alice,
            "amount": 10,
            "idempotency_key": "h",
            "expires_at": later(),
            **fields,
        }
        request = holds_pb2.PlaceHoldRequest(**values)  # type: ignore[arg-type]
        found = await failure(stub.PlaceHold(request, metadata=generation, timeout=5))
        return found.code, found.reason, found.metadata

    invalid, failed = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION
    assert (await refused(amount=101))[:2] == (failed, "INSUFFICIENT_CREDITS")
    assert (await refused(amount=101))[2] == {"required": "101", "available": "100"}
    assert (await refused(amount=0))[:2] == (invalid, "INVALID_AMOUNT")
    assert (await refused(amount=-3))[:2] == (invalid, "INVALID_AMOUNT")
    assert (await refused(user_id=new_user()))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "WALLET_NOT_FOUND",
    )
    assert (await refused(expires_at=later(-1)))[:2] == (invalid, "INVALID_ARGUMENT")
    assert (await refused(expires_at=None))[:2] == (invalid, "INVALID_ARGUMENT")
    assert (await refused(idempotency_key=""))[:2] == (invalid, "INVALID_ARGUMENT")
    assert (await refused(reference="r" * 201))[:2] == (invalid, "INVALID_ARGUMENT")
    assert (await refused(description="d" * 1001))[:2] == (invalid, "INVALID_ARGUMENT")
    assert (await refused(user_id=""))[:2] == (invalid, "INVALID_ARGUMENT")
    assert (await refused(amount=10**12 + 1))[:2] == (invalid, "INVALID_AMOUNT")
    assert await balance(wallet, alice) == (100, 0, 100)

    first = await place(wallet, alice, 10, idem="h")
    # The same request again (expires_at included): the same hold, nothing more held.
    replay = await stub.PlaceHold(
        holds_pb2.PlaceHoldRequest(
            user_id=alice,
            amount=10,
            idempotency_key="h",
            expires_at=first.expires_at,
            reference="job-1",
            description="an image",
        ),
        metadata=generation,
        timeout=5,
    )
    assert replay.hold == first
    assert (await refused(amount=11))[:2] == (grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_REUSED")
    assert await balance(wallet, alice) == (100, 10, 90)

    missing = holds_pb2.CaptureHoldRequest(hold_id=new_user(), amount=1, idempotency_key="c")
    not_found = await failure(stub.CaptureHold(missing, metadata=generation, timeout=5))
    assert (not_found.code, not_found.reason) == (grpc.StatusCode.NOT_FOUND, "HOLD_NOT_FOUND")
    gone = holds_pb2.ReleaseHoldRequest(hold_id="nope", idempotency_key="r")
    not_found = await failure(stub.ReleaseHold(gone, metadata=generation, timeout=5))
    assert (not_found.code, not_found.reason) == (grpc.StatusCode.NOT_FOUND, "HOLD_NOT_FOUND")
