"""TOTP rules, with no I/O (RFC 6238 through `pyotp`): secrets, the otpauth URI,
which time step a code proves, and recovery codes.

Codes are 6 digits over 30-second steps, SHA-1 (what every authenticator app
supports). A code is accepted for the current step or one step either side (clock
drift), and only for a step later than the last one accepted for the account, so a
code cannot be used twice (RFC 6238 5.2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp

ISSUER = "klik"
DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# 16 characters of base32: 80 random bits, so a fast digest at rest is enough.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_LENGTH = 16


def new_secret() -> str:
    """160 random bits, base32 (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account_name: str) -> str:
    """The `otpauth://totp/…` URI an authenticator app scans as a QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account_name, issuer_name=ISSUER
    )


def step_at(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` is right for (now, or one step either side), if later
    than `last_step`; None for a wrong, malformed or already used code."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = step_at(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes shown once, like `abcd-efgh-ijkl-mnop`."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)))
    return codes


def recovery_digest(code: str) -> str:
    """How a recovery code is stored and looked up: separators and case ignored."""
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()
