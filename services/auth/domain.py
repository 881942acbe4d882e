"""The auth service's rules, with no I/O: what a valid email, password, display name,
handle, bio and role are, when a refresh token may be spent, and how long a throttled client waits.

The store reads and writes the values defined here; the use cases (`accounts.py`,
`sessions.py`, `admin.py`, `throttle.py`) ask the functions here what to do."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)

# The roles of API.md; kit.callers.ROLES is the same tuple (a unit test keeps them equal).
ROLES = ("user", "premium", "moderator", "admin")
DEFAULT_ROLE = "user"
ADMIN = "admin"
USER = "user"
PREMIUM = "premium"

# RFC 5321 limits: a path of at most 256 octets including the angle brackets, so an
# address of at most 254; a local part of at most 64.
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
# OWASP ASVS 5.0 V6.2: at least 8 characters, and at least 64 must be allowed.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
MAX_DISPLAY_NAME_LENGTH = 100
MIN_HANDLE_LENGTH = 3
MAX_HANDLE_LENGTH = 30
MAX_BIO_LENGTH = 280
MAX_USER_QUERY_LENGTH = 200  # ListUsers' search text
# Handles nobody may claim: words that read as the platform speaking, and the path
# segments of routes and pages a handle could be mistaken for (`/v1/users/me`). The
# one list: Register and UpdateMe both ask valid_handle.
RESERVED_HANDLES = frozenset(
    {
        "about",
        "account",
        "accounts",
        "admin",
        "administrator",
        "anonymous",
        "api",
        "auth",
        "billing",
        "contact",
        "deleted",
        "docs",
        "help",
        "klik",
        "login",
        "logout",
        "me",
        "mod",
        "moderator",
        "none",
        "null",
        "official",
        "register",
        "root",
        "security",
        "settings",
        "signin",
        "signup",
        "staff",
        "support",
        "system",
        "undefined",
        "user",
        "users",
        "wallet",
    }
)
# The fields of a profile UpdateMe may change (its update_mask paths).
PROFILE_FIELDS = ("display_name", "handle", "bio", "avatar_asset_id")

# Something@something.tld without spaces or control characters; deliberately loose
# (RFC 5322 allows far more), since only a delivered mail proves an address works.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f.]+(\.[^@\s\x00-\x1f\x7f.]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HANDLE = re.compile(r"[a-z0-9_]+")
_BIO_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # newlines are fine in a bio
_ASSET_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    display_name: str
    role: str
    password_hash: str
    created_at: datetime
    email_verified: bool = False
    handle: str = ""  # "" when none was chosen
    bio: str = ""
    avatar_asset_id: str = ""
    avatar_url: str = ""  # where content serves avatar_asset_id; "" when none


@dataclass(frozen=True)
class Profile:
    """What UpdateMe may change; the public side of an Account."""

    display_name: str
    handle: str
    bio: str
    avatar_asset_id: str
    # Not set by the caller: the URL content resolved avatar_asset_id to (profiles.py).
    avatar_url: str = ""


def profile_of(account: Account) -> Profile:
    return Profile(
        account.display_name,
        account.handle,
        account.bio,
        account.avatar_asset_id,
        account.avatar_url,
    )


def verified(account: Account) -> Account:
    """The account once its address is proved."""
    return replace(account, email_verified=True)


# ---- accounts --------------------------------------------------------------------------


def normalise_email(raw: str) -> str:
    """The form emails are stored and compared in: trimmed and case-folded, so
    `Alice@Example.com ` and `alice@example.com` are one account."""
    return raw.strip().casefold()


def valid_email(raw: str) -> str:
    """The normalised email, or INVALID_ARGUMENT `INVALID_EMAIL`."""
    email = normalise_email(raw)
    local = email.rpartition("@")[0]
    if (
        len(email) > MAX_EMAIL_LENGTH
        or len(local) > MAX_LOCAL_PART_LENGTH
        or not _EMAIL.fullmatch(email)
    ):
        raise InvalidArgument("INVALID_EMAIL", "email is not a valid address")
    return email


def valid_password(raw: str, common: frozenset[str]) -> str:
    """The password as it is hashed, or INVALID_ARGUMENT `WEAK_PASSWORD` naming the
    broken rule (`details.rule`: `min_length`, `max_length` or `common`: one of
    `common`, the case-folded most common passwords, accounts.load_common_passwords).

    Normalised to NFKC first (NIST SP 800-63B 5.1.1.2), so the same password typed on
    keyboards that compose characters differently matches; every character counts,
    spaces included (no trimming, no composition rules)."""
    password = normalise_password(raw)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _weak("min_length", f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise _weak("max_length", f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    if password.casefold() in common:
        raise _weak("common", "password is one of the most commonly used passwords")
    return password


def normalise_password(raw: str) -> str:
    """The form a password is hashed and checked in (see valid_password)."""
    return unicodedata.normalize("NFKC", raw)


def _weak(rule: str, message: str) -> InvalidArgument:
    return InvalidArgument("WEAK_PASSWORD", message, details={"rule": rule})


def valid_display_name(raw: str) -> str:
    """Trimmed; INVALID_ARGUMENT `INVALID_DISPLAY_NAME` when blank, longer than
    MAX_DISPLAY_NAME_LENGTH or holding control characters."""
    name = raw.strip()
    if not name or len(name) > MAX_DISPLAY_NAME_LENGTH or _CONTROL.search(name):
        raise InvalidArgument(
            "INVALID_DISPLAY_NAME",
            f"display_name must be 1 to {MAX_DISPLAY_NAME_LENGTH} printable characters",
        )
    return name


def valid_handle(raw: str) -> str:
    """Trimmed and lower-cased ("" stays "": no handle); INVALID_ARGUMENT
    `INVALID_HANDLE` naming the broken rule (`details.rule`: `length`, `characters`,
    `reserved`)."""
    handle = raw.strip().lower()
    if not handle:
        return ""
    if not MIN_HANDLE_LENGTH <= len(handle) <= MAX_HANDLE_LENGTH:
        raise _bad_handle(
            "length", f"handle must be {MIN_HANDLE_LENGTH} to {MAX_HANDLE_LENGTH} characters"
        )
    if not handle.isascii() or not _HANDLE.fullmatch(handle):
        raise _bad_handle("characters", "handle may hold only a-z, 0-9 and _")
    if handle in RESERVED_HANDLES:
        raise _bad_handle("reserved", "this handle is reserved")
    return handle


def _bad_handle(rule: str, message: str) -> InvalidArgument:
    return InvalidArgument("INVALID_HANDLE", message, details={"rule": rule})


def valid_bio(raw: str) -> str:
    """Trimmed; INVALID_ARGUMENT `INVALID_BIO` when over MAX_BIO_LENGTH characters or
    holding control characters other than newlines."""
    bio = raw.strip()
    if len(bio) > MAX_BIO_LENGTH or _BIO_CONTROL.search(bio):
        raise InvalidArgument(
            "INVALID_BIO", f"bio must be at most {MAX_BIO_LENGTH} printable characters"
        )
    return bio


def valid_avatar_asset_id(raw: str) -> str:
    """An asset id's shape ("" removes the avatar); INVALID_ARGUMENT `INVALID_AVATAR`.
    Whether the asset exists, is the caller's and is an image, content says
    (profiles.py asks it through klik.content.v1.AvatarService)."""
    asset_id = raw.strip()
    if asset_id and not _ASSET_ID.fullmatch(asset_id):
        raise InvalidArgument("INVALID_AVATAR", "avatar_asset_id is not an asset id")
    return asset_id


def valid_user_query(raw: str) -> str:
    """ListUsers' search text, trimmed ("" lists everyone); INVALID_ARGUMENT
    `INVALID_QUERY` (field `query`) when over MAX_USER_QUERY_LENGTH characters."""
    query = raw.strip()
    if len(query) > MAX_USER_QUERY_LENGTH:
        raise InvalidArgument(
            "INVALID_QUERY",
            f"query must be at most {MAX_USER_QUERY_LENGTH} characters",
            details={"field": "query"},
        )
    return query


def update_mask(paths: list[str]) -> tuple[str, ...]:
    """The profile fields an UpdateMe mask names, each once; INVALID_ARGUMENT
    `INVALID_UPDATE_MASK` for any other path."""
    for path in paths:
        if path not in PROFILE_FIELDS:
            raise InvalidArgument(
                "INVALID_UPDATE_MASK",
                f"{path!r} cannot be updated (only {', '.join(PROFILE_FIELDS)})",
                details={"field": path},
            )
    return tuple(dict.fromkeys(paths))


def updated_profile(current: Profile, changes: Profile, paths: tuple[str, ...]) -> Profile:
    """`current` with the fields named in `paths` taken, validated, from `changes`."""
    checks = {
        "display_name": valid_display_name,
        "handle": valid_handle,
        "bio": valid_bio,
        "avatar_asset_id": valid_avatar_asset_id,
    }
    values = {path: checks[path](getattr(changes, path)) for path in paths}
    return replace(current, **values)


def with_profile(account: Account, profile: Profile) -> Account:
    return replace(
        account,
        display_name=profile.display_name,
        handle=profile.handle,
        bio=profile.bio,
        avatar_asset_id=profile.avatar_asset_id,
        avatar_url=profile.avatar_url,
    )


def looks_like_id(handle_or_id: str) -> bool:
    """Account ids are UUIDs (with hyphens), which no handle can be."""
    return "-" in handle_or_id


def handle_taken() -> AlreadyExists:
    return AlreadyExists("HANDLE_TAKEN", "another account has this handle")


def session_not_found(session_id: str) -> NotFound:
    return NotFound(
        "SESSION_NOT_FOUND",
        "you have no live session with this id",
        details={"session_id": session_id},
    )


def email_taken() -> AlreadyExists:
    return AlreadyExists("EMAIL_TAKEN", "an account with this email exists")


def invalid_credentials() -> Unauthenticated:
    return Unauthenticated("INVALID_CREDENTIALS", "email or password is wrong")


def user_not_found(user_id: str) -> NotFound:
    return NotFound("USER_NOT_FOUND", "no account has this id", details={"user_id": user_id})


def role_for_new_account(email: str, admin_emails: frozenset[str]) -> str:
    """KLIK_ADMIN_EMAILS bootstraps the first administrators; everyone else is a user."""
    return ADMIN if email in admin_emails else DEFAULT_ROLE


def keeps_an_admin(admins: list[str], user_id: str) -> None:
    """FAILED_PRECONDITION `LAST_ADMIN` when `user_id` is the only admin left: demoting
    or deleting them would leave nobody to administer the suite."""
    if admins == [user_id]:
        raise FailedPrecondition(
            "LAST_ADMIN",
            "this is the last admin: make another account admin first",
            details={"user_id": user_id},
        )


def valid_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgument(
            "INVALID_ROLE", f"role must be one of {', '.join(ROLES)}", details={"role": role}
        )
    return role


# ---- refresh-token families ------------------------------------------------------------


@dataclass(frozen=True)
class RefreshToken:
    """What the store knows of a presented refresh token and its session family."""

    session_id: str
    user_id: str
    spent: bool
    expires_at: datetime  # idle expiry of this token
    session_expires_at: datetime  # absolute expiry of the family
    session_revoked: bool


class Verdict(StrEnum):
    ROTATE = "rotate"  # spend it and issue the next token of the family
    REUSED = "reused"  # already spent: someone holds a copy; end the family
    INVALID = "invalid"  # unknown, expired or logged out


def judge_refresh(token: RefreshToken | None, now: datetime) -> Verdict:
    """What presenting `token` at `now` does (OAuth 2.0 Security BCP 4.14.2: rotation
    with reuse detection)."""
    if token is None or now >= token.session_expires_at:
        return Verdict.INVALID
    if token.spent:
        return Verdict.REUSED
    if token.session_revoked or now >= token.expires_at:
        return Verdict.INVALID
    return Verdict.ROTATE


def refresh_expiry(now: datetime, session_expires_at: datetime, idle_seconds: float) -> datetime:
    """A new refresh token expires when unused for `idle_seconds`, and never after
    its family's absolute expiry (ASVS 5.0 V7.3)."""
    return min(now + timedelta(seconds=idle_seconds), session_expires_at)


# ---- login throttling ------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    """`free_failures` failed attempts within `window` seconds cost nothing; each
    further one makes the client wait `base_delay` doubled per failure beyond the
    free ones, at most `max_delay`. Never a permanent lockout (OWASP: an attacker
    must not be able to lock a victim out), and a success resets the account."""

    free_failures: int
    base_delay: float = 1.0
    max_delay: float = 900.0
    # Failures older than this are forgotten. Longer than max_delay, so an attacker
    # waiting out the longest delay does not get the free attempts back.
    window: float = 3600.0

    def delay(self, failures: int) -> float:
        """How long to wait after the `failures`-th failure."""
        if failures < self.free_failures:
            return 0.0
        excess = failures - self.free_failures
        # Past ~60 doublings the cap applies anyway; avoid computing huge powers.
        return min(self.max_delay, self.base_delay * 2.0 ** min(excess, 60))

    def check(self) -> None:
        if self.free_failures < 1 or self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ValueError(f"unusable throttle policy {self}")
        if self.window < self.max_delay:
            raise ValueError("the failure window must be at least the longest delay")


@dataclass(frozen=True)
class Failures:
    """Recent failed attempts of one account or client address."""

    count: int
    last_at: datetime


def after_failure(current: Failures | None, now: datetime, policy: ThrottlePolicy) -> Failures:
    """The count once another failure happened at `now`."""
    if current is None or _forgotten(current, now, policy):
        return Failures(1, now)
    return Failures(current.count + 1, now)


def retry_after(current: Failures | None, now: datetime, policy: ThrottlePolicy) -> int | None:
    """Whole seconds to wait before the next attempt (rounded up, as HTTP
    `Retry-After` takes them), or None when an attempt may be made now."""
    if current is None or _forgotten(current, now, policy):
        return None
    blocked_until = current.last_at + timedelta(seconds=policy.delay(current.count))
    remaining = (blocked_until - now).total_seconds()
    return math.ceil(remaining) if remaining > 0 else None


def _forgotten(current: Failures, now: datetime, policy: ThrottlePolicy) -> bool:
    return (now - current.last_at).total_seconds() > policy.window


def role_with_plan(role: str, premium: bool) -> str:
    """The role an account has once its plan does (`premium`) or does not carry the
    premium perk: `user` and `premium` swap; a moderator or admin keeps their role
    (it includes all that premium unlocks)."""
    if premium and role == USER:
        return PREMIUM
    if not premium and role == PREMIUM:
        return USER
    return role
