"""The sandbox's own settings, from `KLIK_*` environment variables (README §
Configuration): where `python -m sandbox` listens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.config import env_int, env_str
from sandbox.mail import DEFAULT_SMTP_PORT

# The port the embedded stack (`python -m stack`) and compose run the sandbox on.
# Generation's default KLIK_SANDBOX_URL (services/generation/settings.py) points here.
DEFAULT_PORT = 8090
# The webhook secret the sandbox signs with and the wallet checks, when neither is
# told otherwise (the wallet's default: services/wallet/settings.py).
DEV_STRIPE_WEBHOOK_SECRET = "whsec_klik_sandbox"
# What the sandbox's HeyGen signs its callbacks with, and the key its Leonardo sends,
# in the embedded stack (generation checks them: KLIK_HEYGEN_WEBHOOK_SECRET,
# KLIK_LEONARDO_WEBHOOK_KEY).
DEV_HEYGEN_WEBHOOK_SECRET = "klik-sandbox-heygen"
DEV_LEONARDO_WEBHOOK_KEY = "klik-sandbox-leonardo"


@dataclass(frozen=True)
class SandboxSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    log_level: str = "INFO"
    smtp_port: int = DEFAULT_SMTP_PORT  # KLIK_SANDBOX_SMTP_PORT: the mail sink
    # Where the Stripe imitation delivers its webhooks (the gateway's
    # POST /v1/webhooks/stripe) and the secret it signs them with.
    stripe_webhook_url: str = ""
    stripe_webhook_secret: str = DEV_STRIPE_WEBHOOK_SECRET

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SandboxSettings:
        return cls(
            host=env_str("KLIK_SANDBOX_HOST", "127.0.0.1", env),
            port=env_int("KLIK_SANDBOX_PORT", DEFAULT_PORT, env),
            log_level=env_str("KLIK_LOG_LEVEL", "INFO", env).upper(),
            smtp_port=env_int("KLIK_SANDBOX_SMTP_PORT", DEFAULT_SMTP_PORT, env),
            stripe_webhook_url=env_str("KLIK_STRIPE_WEBHOOK_URL", "", env),
            stripe_webhook_secret=env_str(
                "KLIK_STRIPE_WEBHOOK_SECRET", DEV_STRIPE_WEBHOOK_SECRET, env
            ),
        )
