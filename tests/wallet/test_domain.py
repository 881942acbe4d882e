"""The ledger's rules without I/O (services.wallet.domain) and the cursor helper
(kit.paging)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kit import paging
from kit.config import ConfigError
from kit.errors import DomainError
from kit.idempotency import MAX_KEY_LENGTH, check_key, fingerprint
from services.wallet import domain
from services.wallet.domain import Hold, HoldStatus, Wallet
from services.wallet.settings import DEFAULT_PLANS, WalletOptions

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def wallet(balance: int = 100, held: int = 0) -> Wallet:
    return Wallet("u", balance, held, created_at=NOW, updated_at=NOW)


def hold(amount: int = 40, status: HoldStatus = HoldStatus.OPEN, ttl: float = 60) -> Hold:
    placed = domain.new_hold("u", amount, NOW + timedelta(seconds=ttl), "job", "desc", NOW)
    return replace(placed, status=status)


def reason(error: pytest.ExceptionInfo[DomainError]) -> str:
    return error.value.reason


def test_amounts_are_positive_integers_within_bounds() -> None:
    assert domain.require_amount(1) == 1
    assert domain.require_amount(domain.MAX_AMOUNT) == domain.MAX_AMOUNT
    assert domain.require_amount(0, allow_zero=True) == 0
    for bad in (0, -1, domain.MAX_AMOUNT + 1):
        with pytest.raises(DomainError) as error:
            domain.require_amount(bad)
        assert reason(error) == "INVALID_AMOUNT"
    with pytest.raises(DomainError) as error:
        domain.require_amount(-1, allow_zero=True)
    assert reason(error) == "INVALID_AMOUNT"


def test_debits_and_holds_come_out_of_available_credits_only() -> None:
    assert domain.debit(wallet(100, 30), 70, NOW).balance == 30
    assert domain.reserve(wallet(100, 30), 70, NOW).held == 100
    for change in (domain.debit, domain.reserve):
        with pytest.raises(DomainError) as error:
            change(wallet(100, 30), 71, NOW)
        assert reason(error) == "INSUFFICIENT_CREDITS"
        assert error.value.details == {"required": "71", "available": "70"}
    with pytest.raises(DomainError) as error:
        domain.credit(wallet(domain.MAX_BALANCE), 1, NOW)
    assert reason(error) == "INVALID_AMOUNT"


def test_capture_charges_at_most_the_hold_and_frees_all_of_it() -> None:
    placed = hold(40)
    before = wallet(100, 50)
    partial = domain.capture(placed, before, 25, NOW)
    assert (partial.charged, partial.freed) == (25, 40)
    assert (partial.wallet.balance, partial.wallet.held) == (75, 10)
    assert (partial.hold.status, partial.hold.captured_amount) == ("captured", 25)
    clamped = domain.capture(placed, before, 1000, NOW)
    assert (clamped.charged, clamped.wallet.balance, clamped.wallet.held) == (40, 60, 10)
    nothing = domain.capture(placed, before, 0, NOW)
    assert (nothing.charged, nothing.wallet.balance, nothing.wallet.held) == (0, 100, 10)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (HoldStatus.CAPTURED, "HOLD_ALREADY_CAPTURED"),
        (HoldStatus.RELEASED, "HOLD_ALREADY_RELEASED"),
        (HoldStatus.EXPIRED, "HOLD_EXPIRED"),
    ],
)
def test_a_hold_resolves_once(status: HoldStatus, expected: str) -> None:
    with pytest.raises(DomainError) as error:
        domain.capture(hold(status=status), wallet(100, 0), 5, NOW)
    assert reason(error) == expected
    if status == HoldStatus.CAPTURED:
        with pytest.raises(DomainError) as error:
            domain.release(hold(status=status), wallet(100, 0), NOW)
        assert reason(error) == "HOLD_ALREADY_CAPTURED"
    else:
        assert domain.release(hold(status=status), wallet(100, 0), NOW) is None
    assert domain.expire(hold(status=status, ttl=-1), wallet(100, 0), NOW) is None


def test_expiry_is_the_moment_expires_at_passes() -> None:
    due = hold(40, ttl=0)
    with pytest.raises(domain.HoldExpired) as error:
        domain.capture(due, wallet(100, 40), 10, NOW)
    assert error.value.expire_now and error.value.reason == "HOLD_EXPIRED"
    expired = domain.expire(due, wallet(100, 40), NOW)
    assert expired is not None and expired.hold.status == "expired" and expired.wallet.held == 0
    assert domain.expire(hold(40, ttl=1), wallet(100, 40), NOW) is None
    late = domain.release(due, wallet(100, 40), NOW)
    assert late is not None and late.hold.status == "expired"
    released = domain.release(hold(40, ttl=1), wallet(100, 40), NOW)
    assert released is not None and released.hold.status == "released"


def test_the_invariant_check_refuses_a_negative_available() -> None:
    with pytest.raises(AssertionError):
        domain.check(wallet(10, 11))
    with pytest.raises(AssertionError):
        domain.check(wallet(10, -1))


def test_fingerprints_tell_requests_apart() -> None:
    one = fingerprint("transfer", {"to_user_id": "b", "amount": 5, "note": ""})
    assert one == fingerprint("transfer", {"note": "", "amount": 5, "to_user_id": "b"})
    assert one != fingerprint("transfer", {"to_user_id": "b", "amount": 6, "note": ""})
    assert one != fingerprint("grant", {"to_user_id": "b", "amount": 5, "note": ""})
    # A string "5" is not the number 5.
    assert one != fingerprint("transfer", {"to_user_id": "b", "amount": "5", "note": ""})


def test_request_fields_are_validated_before_any_io() -> None:
    with pytest.raises(DomainError) as error:
        check_key("", required=True)
    assert reason(error) == "INVALID_ARGUMENT"
    with pytest.raises(DomainError):
        check_key("k" * (MAX_KEY_LENGTH + 1), required=True)
    with pytest.raises(DomainError) as error:
        domain.refuse_self_transfer("a", "a")
    assert reason(error) == "SELF_TRANSFER"
    with pytest.raises(DomainError) as error:
        domain.require_future(NOW, NOW)
    assert reason(error) == "INVALID_ARGUMENT"
    closed = Wallet("u", 0, 0, created_at=NOW, updated_at=NOW, closed_at=NOW)
    for missing in (None, closed):
        with pytest.raises(DomainError) as error:
            domain.require_open(missing, "u")
        assert reason(error) == "WALLET_NOT_FOUND"
    assert not domain.plausible_id("x" * 65) and not domain.plausible_id("")


def test_page_sizes_default_and_clamp() -> None:
    assert paging.page_size(0) == 20
    assert paging.page_size(7) == 7
    assert paging.page_size(1000) == 100
    with pytest.raises(DomainError):
        paging.page_size(-1)


def test_cursors_round_trip_and_only_for_their_rpc() -> None:
    token = paging.encode_cursor("wallet.ListTransactions", {"seq": 42})
    assert paging.decode_cursor("wallet.ListTransactions", token) == {"seq": 42}
    assert paging.decode_cursor("wallet.ListTransactions", "") is None
    for bad in (
        "not base64 at all!",
        "bm90IGpzb24",  # "not json"
        paging.encode_cursor("auth.ListUsers", {"seq": 42}),
        "W10",  # []
        paging.encode_cursor("wallet.ListTransactions", {"seq": 1})[:-3],
    ):
        with pytest.raises(DomainError) as error:
            paging.decode_cursor("wallet.ListTransactions", bad)
        assert reason(error) == "INVALID_PAGE_TOKEN"


def test_plans_parse_from_the_setting_and_refuse_what_is_not_one() -> None:
    plans = domain.parse_plans(" basic:price_1:500 , gold:price_2:2000:premium,")
    assert plans == (
        domain.Plan("basic", "price_1", 500, premium=False),
        domain.Plan("gold", "price_2", 2000, premium=True),
    )
    assert domain.find_plan(plans, "gold").premium
    with pytest.raises(DomainError) as missing:
        domain.find_plan(plans, "nope")
    assert missing.value.reason == "PLAN_NOT_FOUND"
    for bad in ("basic:price_1", "basic::500", "basic:price_1:0", "a:p:1,a:q:2", "a:p:1:vip"):
        with pytest.raises(ValueError):
            domain.parse_plans(bad)
    with pytest.raises(ConfigError, match="KLIK_PLANS"):
        WalletOptions.from_env({"KLIK_PLANS": "basic:price_1:lots"})
    assert WalletOptions.from_env({}).plans == domain.parse_plans(DEFAULT_PLANS)


def test_a_subscription_is_in_force_while_active_or_trialing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = domain.Subscription("sub_1", "u", "gold", "active", now, now)
    assert base.active and replace(base, status="trialing").active
    for status in ("incomplete", "past_due", "unpaid", "canceled", "paused"):
        assert not replace(base, status=status).active
    assert domain.subscription_status("something_new") == "incomplete"
    assert domain.subscription_status("past_due") == "past_due"
