"""The auth domain's rules, without I/O: emails, passwords, display names, roles,
refresh-token verdicts and throttle arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.callers import ROLES as KIT_ROLES
from kit.errors import DomainError, InvalidArgument
from services.auth import domain
from services.auth.accounts import load_common_passwords
from services.auth.domain import Failures, RefreshToken, ThrottlePolicy, Verdict

NOW = datetime(2030, 1, 1, tzinfo=UTC)
COMMON = load_common_passwords()


def reason(error: pytest.ExceptionInfo[DomainError]) -> tuple[str, dict[str, str]]:
    return error.value.reason, error.value.details


def test_emails_are_trimmed_case_folded_and_loosely_checked() -> None:
    assert domain.valid_email("  Alice.Smith+tag@Example.CO.uk ") == "alice.smith+tag@example.co.uk"
    assert domain.normalise_email("ÅSA@Example.com") == "åsa@example.com"
    for bad in (
        "",
        "alice",
        "alice@",
        "@example.com",
        "a@b",
        "a b@example.com",
        "a@@b.com",
        "a@b..com",
        "a@.b.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "a\x00@example.com",
    ):
        with pytest.raises(InvalidArgument) as error:
            domain.valid_email(bad)
        assert error.value.reason == "INVALID_EMAIL", bad


def test_password_rules() -> None:
    assert domain.valid_password("eight ch", COMMON) == "eight ch"
    assert domain.valid_password("x" * 128, COMMON) == "x" * 128
    cases = {
        "seven c": "min_length",
        "x" * 129: "max_length",
        "TrustNo1": "common",
        "iloveyou!": "common",
    }
    for password, rule in cases.items():
        with pytest.raises(InvalidArgument) as error:
            domain.valid_password(password, COMMON)
        assert reason(error) == ("WEAK_PASSWORD", {"rule": rule}), password


def test_passwords_are_nfkc_normalised_before_length_and_hashing() -> None:
    # "ﬁ" (one ligature character) is "fi" after NFKC: the same password either way.
    assert domain.valid_password("ﬁrewall-ﬁre", COMMON) == "firewall-fire"
    composed, decomposed = "café-crème", "cafe\u0301-cre\u0300me"
    assert (
        domain.valid_password(decomposed, COMMON)
        == domain.valid_password(composed, COMMON)
        == composed
    )


def test_the_shipped_list_is_the_published_ten_thousand() -> None:
    assert len(COMMON) == 10_000
    assert {"password", "123456", "qwerty", "trustno1", "eyphed"} <= COMMON


def test_display_names() -> None:
    assert domain.valid_display_name("  Zoë  ") == "Zoë"
    for bad in ("", "   ", "x" * 101, "new\nline"):
        with pytest.raises(InvalidArgument) as error:
            domain.valid_display_name(bad)
        assert error.value.reason == "INVALID_DISPLAY_NAME"


def test_roles() -> None:
    assert domain.ROLES == KIT_ROLES
    admins = frozenset({"boss@example.com"})
    assert domain.role_for_new_account("boss@example.com", admins) == "admin"
    assert domain.role_for_new_account("staff@example.com", admins) == "user"
    assert domain.valid_role("moderator") == "moderator"
    with pytest.raises(InvalidArgument) as error:
        domain.valid_role("Admin")
    assert error.value.reason == "INVALID_ROLE"


def token(**overrides: object) -> RefreshToken:
    base: dict[str, object] = {
        "session_id": "s",
        "user_id": "u",
        "spent": False,
        "expires_at": NOW + timedelta(days=1),
        "session_expires_at": NOW + timedelta(days=30),
        "session_revoked": False,
    }
    base.update(overrides)
    return RefreshToken(**base)  # type: ignore[arg-type]


def test_refresh_verdicts() -> None:
    assert domain.judge_refresh(None, NOW) is Verdict.INVALID
    assert domain.judge_refresh(token(), NOW) is Verdict.ROTATE
    assert domain.judge_refresh(token(spent=True), NOW) is Verdict.REUSED
    # A spent token of a logged-out family is still evidence of a copy.
    assert domain.judge_refresh(token(spent=True, session_revoked=True), NOW) is Verdict.REUSED
    assert domain.judge_refresh(token(session_revoked=True), NOW) is Verdict.INVALID
    assert domain.judge_refresh(token(expires_at=NOW), NOW) is Verdict.INVALID
    # Past the absolute expiry nothing of the family counts, not even reuse.
    assert domain.judge_refresh(token(spent=True, session_expires_at=NOW), NOW) is Verdict.INVALID


def test_refresh_expiry_never_passes_the_family_expiry() -> None:
    family_end = NOW + timedelta(days=2)
    assert domain.refresh_expiry(NOW, family_end, 3600) == NOW + timedelta(hours=1)
    assert domain.refresh_expiry(NOW, family_end, 14 * 86400) == family_end


POLICY = ThrottlePolicy(free_failures=5, base_delay=1.0, max_delay=900.0, window=3600.0)


def test_throttle_delays_double_and_are_capped() -> None:
    assert [POLICY.delay(n) for n in range(1, 9)] == [0, 0, 0, 0, 1, 2, 4, 8]
    assert POLICY.delay(15) == 900 and POLICY.delay(10_000) == 900


def test_throttle_counts_within_the_window_and_forgets_after_it() -> None:
    count = None
    for i in range(5):
        count = domain.after_failure(count, NOW + timedelta(seconds=i), POLICY)
    assert count == Failures(5, NOW + timedelta(seconds=4))
    assert domain.retry_after(count, NOW + timedelta(seconds=4), POLICY) == 1
    assert domain.retry_after(count, NOW + timedelta(seconds=4.2), POLICY) == 1  # rounded up
    assert domain.retry_after(count, NOW + timedelta(seconds=5), POLICY) is None
    later = NOW + timedelta(seconds=4 + 3601)
    assert domain.retry_after(count, later, POLICY) is None
    assert domain.after_failure(count, later, POLICY) == Failures(1, later)


def test_unusable_throttle_policies_are_refused() -> None:
    for bad in (
        ThrottlePolicy(0),
        ThrottlePolicy(5, 0.0),
        ThrottlePolicy(5, 10, 5),
        ThrottlePolicy(5, 1, 900, window=60),
    ):
        with pytest.raises(ValueError):
            bad.check()


@given(
    failures=st.integers(min_value=0, max_value=500),
    free=st.integers(min_value=1, max_value=20),
    base=st.floats(min_value=0.01, max_value=60),
)
def test_delay_never_shrinks_and_never_exceeds_the_cap(
    failures: int, free: int, base: float
) -> None:
    policy = ThrottlePolicy(free, base, max_delay=900.0)
    assert 0 <= policy.delay(failures) <= policy.delay(failures + 1) <= 900.0
    assert (policy.delay(failures) == 0) == (failures < free)


@given(seconds=st.floats(min_value=0, max_value=7200), count=st.integers(min_value=1, max_value=40))
def test_retry_after_is_a_whole_positive_number_or_none(seconds: float, count: int) -> None:
    waited = domain.retry_after(Failures(count, NOW), NOW + timedelta(seconds=seconds), POLICY)
    assert waited is None or (isinstance(waited, int) and waited >= 1)
    if waited is not None:
        assert seconds < POLICY.delay(count) <= seconds + waited


def test_a_plans_premium_perk_swaps_user_and_premium_only() -> None:
    assert domain.role_with_plan("user", True) == "premium"
    assert domain.role_with_plan("premium", False) == "user"
    assert domain.role_with_plan("premium", True) == "premium"
    assert domain.role_with_plan("user", False) == "user"
    for role in ("moderator", "admin"):
        assert domain.role_with_plan(role, True) == role
        assert domain.role_with_plan(role, False) == role
