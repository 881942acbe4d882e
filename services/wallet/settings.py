"""The wallet service's own settings (beyond the kit's `ServiceSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.config import ConfigError, env_float, env_int, env_str
from services.wallet.domain import MAX_AMOUNT

# Idempotency keys are kept at least this long (API.md: at least 24 hours).
MIN_KEY_RETENTION_HOURS = 24.0


@dataclass(frozen=True)
class WalletOptions:
    # Credits a new wallet opens with (`KLIK_SIGNUP_CREDITS`); 0 opens it empty.
    signup_credits: int = 100
    # When the bonus is paid (`KLIK_SIGNUP_BONUS_ON`): on `user.email_verified`
    # ("verified": throwaway addresses earn nothing) or on `user.registered`.
    signup_bonus_on: str = "verified"
    # How often the sweeper looks for holds past their expiry (`KLIK_WALLET_SWEEP_SECONDS`).
    sweep_interval: float = 5.0
    # How long idempotency keys are kept (`KLIK_WALLET_IDEMPOTENCY_HOURS`, >= 24).
    key_retention_hours: float = 48.0
    # How often old idempotency keys are pruned.
    prune_interval: float = 3600.0
    # Name prefix of the durable JetStream consumers (replicas share them).
    consumer_prefix: str = "wallet"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WalletOptions:
        options = cls(
            signup_credits=env_int("KLIK_SIGNUP_CREDITS", cls.signup_credits, env),
            signup_bonus_on=env_str("KLIK_SIGNUP_BONUS_ON", cls.signup_bonus_on, env).lower(),
            sweep_interval=env_float("KLIK_WALLET_SWEEP_SECONDS", cls.sweep_interval, env),
            key_retention_hours=env_float(
                "KLIK_WALLET_IDEMPOTENCY_HOURS", cls.key_retention_hours, env
            ),
        )
        if not 0 <= options.signup_credits <= MAX_AMOUNT:
            raise ConfigError(f"KLIK_SIGNUP_CREDITS must be between 0 and {MAX_AMOUNT}")
        if options.signup_bonus_on not in ("verified", "registered"):
            raise ConfigError("KLIK_SIGNUP_BONUS_ON must be `verified` or `registered`")
        if options.sweep_interval <= 0:
            raise ConfigError("KLIK_WALLET_SWEEP_SECONDS must be positive")
        if options.key_retention_hours < MIN_KEY_RETENTION_HOURS:
            raise ConfigError(
                f"KLIK_WALLET_IDEMPOTENCY_HOURS must be at least {MIN_KEY_RETENTION_HOURS:g}"
            )
        return options
