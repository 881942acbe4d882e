"""The wallet service's own settings (beyond the kit's `ServiceSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.config import ConfigError, env_float, env_int, env_str
from kit.idempotency import MIN_RETENTION_HOURS
from services.wallet.domain import MAX_AMOUNT, CreditPack, Plan, parse_packs, parse_plans

# Without KLIK_STRIPE_SECRET_KEY the wallet talks to the sandbox's Stripe
# (KLIK_SANDBOX_URL) with this key; with it, to Stripe itself.
SANDBOX_STRIPE_KEY = "sk_test_klik_sandbox"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
# The sandbox signs its webhooks with the same secret (sandbox/settings.py).
DEV_STRIPE_WEBHOOK_SECRET = "whsec_klik_sandbox"
DEFAULT_PACKS = "starter:100:500,plus:550:2500,pro:1200:5000"
# The sandbox's Stripe accepts any price id (a monthly price of 1000 cents).
DEFAULT_PLANS = "basic:price_klik_basic:500,premium:price_klik_premium:2000:premium"


@dataclass(frozen=True)
class WalletOptions:
    # Credits a new wallet opens with (`KLIK_SIGNUP_CREDITS`); 0 opens it empty.
    signup_credits: int = 100
    # When the bonus is paid (`KLIK_SIGNUP_BONUS_ON`): on `user.email_verified`
    # ("verified": throwaway addresses earn nothing) or on `user.registered`.
    signup_bonus_on: str = "verified"
    # How often the sweeper looks for holds past their expiry (`KLIK_WALLET_SWEEP_SECONDS`).
    sweep_interval: float = 5.0
    # How often the sweeper looks for credit lots past their expiry
    # (`KLIK_WALLET_EXPIRY_SWEEP_SECONDS`).
    expiry_sweep_interval: float = 30.0
    # How long idempotency keys are kept (`KLIK_WALLET_IDEMPOTENCY_HOURS`, >= 24).
    key_retention_hours: float = 48.0
    # How often old idempotency keys are pruned.
    prune_interval: float = 3600.0
    # Name prefix of the durable JetStream consumers (replicas share them).
    consumer_prefix: str = "wallet"
    # Stripe: the API key (`KLIK_STRIPE_SECRET_KEY`), where its API is
    # (`KLIK_STRIPE_API_BASE`; "" is Stripe itself) and the webhook signing secret
    # (`KLIK_STRIPE_WEBHOOK_SECRET`).
    stripe_secret_key: str = SANDBOX_STRIPE_KEY
    stripe_api_base: str = DEFAULT_SANDBOX_URL
    stripe_webhook_secret: str = DEV_STRIPE_WEBHOOK_SECRET
    # Credit packs on sale (`KLIK_CREDIT_PACKS`: `id:credits:price_cents,…`) and
    # their currency (`KLIK_STRIPE_CURRENCY`).
    credit_packs: tuple[CreditPack, ...] = parse_packs(DEFAULT_PACKS, "usd")
    # Subscription plans on sale (`KLIK_PLANS`: `id:price_id:allowance[:premium],…`).
    plans: tuple[Plan, ...] = parse_plans(DEFAULT_PLANS)
    # Origins Checkout may return to (`KLIK_CHECKOUT_RETURN_ORIGINS`, comma-separated).
    checkout_return_origins: tuple[str, ...] = ("http://localhost:3000",)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WalletOptions:
        real_key = env_str("KLIK_STRIPE_SECRET_KEY", "", env)
        sandbox_url = env_str("KLIK_SANDBOX_URL", DEFAULT_SANDBOX_URL, env)
        currency = env_str("KLIK_STRIPE_CURRENCY", "usd", env).lower()
        origins = env_str("KLIK_CHECKOUT_RETURN_ORIGINS", "http://localhost:3000", env)
        try:
            packs = parse_packs(env_str("KLIK_CREDIT_PACKS", DEFAULT_PACKS, env), currency)
        except ValueError as error:
            raise ConfigError(f"KLIK_CREDIT_PACKS: {error}") from None
        try:
            plans = parse_plans(env_str("KLIK_PLANS", DEFAULT_PLANS, env))
        except ValueError as error:
            raise ConfigError(f"KLIK_PLANS: {error}") from None
        options = cls(
            stripe_secret_key=real_key or SANDBOX_STRIPE_KEY,
            stripe_api_base=env_str(
                "KLIK_STRIPE_API_BASE", "" if real_key else sandbox_url, env
            ).rstrip("/"),
            stripe_webhook_secret=env_str(
                "KLIK_STRIPE_WEBHOOK_SECRET", DEV_STRIPE_WEBHOOK_SECRET, env
            ),
            credit_packs=packs,
            plans=plans,
            checkout_return_origins=tuple(
                o.strip().rstrip("/") for o in origins.split(",") if o.strip()
            ),
            signup_credits=env_int("KLIK_SIGNUP_CREDITS", cls.signup_credits, env),
            signup_bonus_on=env_str("KLIK_SIGNUP_BONUS_ON", cls.signup_bonus_on, env).lower(),
            sweep_interval=env_float("KLIK_WALLET_SWEEP_SECONDS", cls.sweep_interval, env),
            expiry_sweep_interval=env_float(
                "KLIK_WALLET_EXPIRY_SWEEP_SECONDS", cls.expiry_sweep_interval, env
            ),
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
        if options.expiry_sweep_interval <= 0:
            raise ConfigError("KLIK_WALLET_EXPIRY_SWEEP_SECONDS must be positive")
        if options.key_retention_hours < MIN_RETENTION_HOURS:
            raise ConfigError(
                f"KLIK_WALLET_IDEMPOTENCY_HOURS must be at least {MIN_RETENTION_HOURS:g}"
            )
        return options
