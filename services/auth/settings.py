"""The auth service's own settings (beyond the kit's `ServiceSettings`, which holds
the access-token lifetime and leeway every service shares)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kit.config import ConfigError, env_float, env_int, env_str
from services.auth.domain import ThrottlePolicy, normalise_email

DAY = 24 * 3600.0

# OWASP Password Storage Cheat Sheet, argon2id minimum: 19 MiB, 2 iterations, 1 lane.
# Lower settings are refused rather than silently weakening every stored hash.
MIN_ARGON2_MEMORY_KIB = 19 * 1024
MIN_ARGON2_TIME_COST = 2


@dataclass(frozen=True)
class Argon2Parameters:
    memory_kib: int = MIN_ARGON2_MEMORY_KIB  # KLIK_ARGON2_MEMORY_KIB
    time_cost: int = MIN_ARGON2_TIME_COST  # KLIK_ARGON2_TIME_COST
    parallelism: int = 1  # KLIK_ARGON2_PARALLELISM

    def describe(self) -> str:
        return f"argon2id m={self.memory_kib} KiB, t={self.time_cost}, p={self.parallelism}"


@dataclass(frozen=True)
class AuthOptions:
    # Accounts registered with one of these (normalised) emails get the role admin.
    admin_emails: frozenset[str] = frozenset()  # KLIK_ADMIN_EMAILS, comma-separated
    argon2: Argon2Parameters = field(default_factory=Argon2Parameters)
    # A refresh token unused this long expires (KLIK_REFRESH_IDLE_SECONDS) ...
    refresh_idle_seconds: float = 14 * DAY
    # ... and no session family outlives this, however active (KLIK_REFRESH_ABSOLUTE_SECONDS).
    refresh_absolute_seconds: float = 90 * DAY
    # How long a signing key signs before the next one takes over
    # (KLIK_SIGNING_KEY_ROTATION_SECONDS).
    signing_key_rotation_seconds: float = 30 * DAY
    # Failed logins per account, and (more, since many people can share one address)
    # per client address, before growing delays start.
    account_throttle: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(5))
    address_throttle: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(20))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthOptions:
        argon2 = Argon2Parameters(
            memory_kib=env_int("KLIK_ARGON2_MEMORY_KIB", MIN_ARGON2_MEMORY_KIB, env),
            time_cost=env_int("KLIK_ARGON2_TIME_COST", MIN_ARGON2_TIME_COST, env),
            parallelism=env_int("KLIK_ARGON2_PARALLELISM", 1, env),
        )
        base_delay = env_float("KLIK_LOGIN_BASE_DELAY_SECONDS", 1.0, env)
        max_delay = env_float("KLIK_LOGIN_MAX_DELAY_SECONDS", 900.0, env)
        window = env_float("KLIK_LOGIN_FAILURE_WINDOW_SECONDS", 3600.0, env)

        def throttle(variable: str, default: int) -> ThrottlePolicy:
            return ThrottlePolicy(env_int(variable, default, env), base_delay, max_delay, window)

        options = cls(
            admin_emails=frozenset(
                normalise_email(email)
                for email in env_str("KLIK_ADMIN_EMAILS", "", env).split(",")
                if email.strip()
            ),
            argon2=argon2,
            refresh_idle_seconds=env_float("KLIK_REFRESH_IDLE_SECONDS", 14 * DAY, env),
            refresh_absolute_seconds=env_float("KLIK_REFRESH_ABSOLUTE_SECONDS", 90 * DAY, env),
            signing_key_rotation_seconds=env_float(
                "KLIK_SIGNING_KEY_ROTATION_SECONDS", 30 * DAY, env
            ),
            account_throttle=throttle("KLIK_LOGIN_MAX_FAILURES", 5),
            address_throttle=throttle("KLIK_LOGIN_ADDRESS_MAX_FAILURES", 20),
        )
        options.check()
        return options

    def check(self) -> None:
        """Refuse settings that would weaken the service or cannot work."""
        if self.argon2.memory_kib < MIN_ARGON2_MEMORY_KIB:
            raise ConfigError(f"KLIK_ARGON2_MEMORY_KIB must be at least {MIN_ARGON2_MEMORY_KIB}")
        if self.argon2.time_cost < MIN_ARGON2_TIME_COST:
            raise ConfigError(f"KLIK_ARGON2_TIME_COST must be at least {MIN_ARGON2_TIME_COST}")
        if self.argon2.parallelism < 1:
            raise ConfigError("KLIK_ARGON2_PARALLELISM must be at least 1")
        if not 0 < self.refresh_idle_seconds <= self.refresh_absolute_seconds:
            raise ConfigError(
                "KLIK_REFRESH_IDLE_SECONDS must be positive and at most "
                "KLIK_REFRESH_ABSOLUTE_SECONDS"
            )
        if self.signing_key_rotation_seconds <= 0:
            raise ConfigError("KLIK_SIGNING_KEY_ROTATION_SECONDS must be positive")
        for policy in (self.account_throttle, self.address_throttle):
            try:
                policy.check()
            except ValueError as error:
                raise ConfigError(f"KLIK_LOGIN_* settings: {error}") from None
