"""The auth service's own settings (beyond the kit's `ServiceSettings`, which holds
the access-token lifetime and leeway every service shares)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from kit.backoff import Backoff
from kit.config import GATEWAY_PORT, ConfigError, env_float, env_int, env_str
from services.auth import kek
from services.auth.domain import ROLES, ThrottlePolicy, normalise_email
from services.auth.oidc_settings import OidcOptions

DAY = 24 * 3600.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Who may tell auth the client's address (`klik-client-address`): by default the
# loopback and private networks the gateway and the services run in.
DEFAULT_TRUSTED_CALLERS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def parse_networks(variable: str, value: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (a bare address is one host); ConfigError otherwise."""
    networks: list[Network] = []
    for item in value.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"{variable}: {item.strip()!r} is not a CIDR") from None
    return tuple(networks)


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


SMTP_TLS_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class SmtpSettings:
    """Where auth hands its mail over. The default is the sandbox's mail sink, which
    the embedded stack starts (sandbox/mail.py, KLIK_SANDBOX_SMTP_PORT 8025)."""

    host: str = "127.0.0.1"  # KLIK_SMTP_HOST
    port: int = 8025  # KLIK_SMTP_PORT
    tls: str = "none"  # KLIK_SMTP_TLS: none | starttls | tls (implicit TLS, port 465)
    user: str = ""  # KLIK_SMTP_USER (no login when empty)
    password: str = ""  # KLIK_SMTP_PASSWORD
    sender: str = "klik <no-reply@klik.localhost>"  # KLIK_SMTP_FROM
    timeout_seconds: float = 10.0  # KLIK_SMTP_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        return cls(
            host=env_str("KLIK_SMTP_HOST", "127.0.0.1", env),
            port=env_int("KLIK_SMTP_PORT", 8025, env),
            tls=env_str("KLIK_SMTP_TLS", "none", env).lower(),
            user=env_str("KLIK_SMTP_USER", "", env),
            password=env_str("KLIK_SMTP_PASSWORD", "", env),
            sender=env_str("KLIK_SMTP_FROM", "klik <no-reply@klik.localhost>", env),
            timeout_seconds=env_float("KLIK_SMTP_TIMEOUT_SECONDS", 10.0, env),
        )


@dataclass(frozen=True)
class MailOptions:
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    # Links in mail point here (the web app, or the gateway): KLIK_PUBLIC_URL.
    public_url: str = f"http://127.0.0.1:{GATEWAY_PORT}"
    # Waits between delivery attempts: doubling from 1 s up to
    # KLIK_MAIL_RETRY_MAX_SECONDS (30), jittered; a mail is retried until it goes out.
    retry: Backoff = field(default_factory=lambda: Backoff(1.0, 30.0, jitter="equal"))
    # How often the sender looks for mail another replica queued (KLIK_MAIL_POLL_SECONDS);
    # mail this replica queues goes out at once.
    poll_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MailOptions:
        return cls(
            smtp=SmtpSettings.from_env(env),
            public_url=env_str("KLIK_PUBLIC_URL", f"http://127.0.0.1:{GATEWAY_PORT}", env).rstrip(
                "/"
            ),
            retry=Backoff(1.0, env_float("KLIK_MAIL_RETRY_MAX_SECONDS", 30.0, env), jitter="equal"),
            poll_seconds=env_float("KLIK_MAIL_POLL_SECONDS", 2.0, env),
        )


@dataclass(frozen=True)
class AuthOptions:
    # Name prefix of the durable JetStream consumers (replicas share them).
    consumer_prefix: str = "auth"
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
    mail: MailOptions = field(default_factory=MailOptions)
    # gRPC peers whose `klik-client-address` is believed (KLIK_AUTH_TRUSTED_CALLERS).
    trusted_callers: tuple[Network, ...] = field(
        default_factory=lambda: parse_networks("default", DEFAULT_TRUSTED_CALLERS)
    )
    # A verification link works this long (KLIK_EMAIL_VERIFICATION_TTL_SECONDS) ...
    email_verification_seconds: float = DAY
    # ... and another one is mailed at most this often (KLIK_VERIFICATION_RESEND_SECONDS).
    verification_resend_seconds: float = 60.0
    # A password-reset link works this long (KLIK_PASSWORD_RESET_TTL_SECONDS).
    password_reset_seconds: float = 1800.0
    # Reset requests per email address and per client before delays start.
    reset_email_throttle: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(3))
    reset_address_throttle: ThrottlePolicy = field(default_factory=lambda: ThrottlePolicy(10))
    # The key-encryption keys that seal signing keys and TOTP secrets at rest
    # (KLIK_AUTH_KEK, KLIK_AUTH_KEK_FILE; kek.py). from_env refuses to go without;
    # options built in code without one get a random key that lives as long as they do.
    sealer: kek.Sealer = field(default_factory=kek.ephemeral)
    # Accounts with one of these roles must turn on two-factor sign-in: until they
    # do, their access tokens carry `tfr` and role-restricted RPCs refuse them
    # (KLIK_REQUIRE_2FA_ROLES, comma-separated; empty by default).
    require_2fa_roles: frozenset[str] = frozenset()
    # A login challenge (the second step of a two-factor login) works this long
    # (KLIK_2FA_CHALLENGE_TTL_SECONDS).
    two_factor_challenge_seconds: float = 300.0
    # A change-of-email link works this long (KLIK_EMAIL_CHANGE_TTL_SECONDS).
    email_change_seconds: float = DAY
    # Social sign-in: KLIK_OIDC_* (services/auth/oidc_settings.py).
    oidc: OidcOptions = field(default_factory=OidcOptions)

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
            mail=MailOptions.from_env(env),
            trusted_callers=parse_networks(
                "KLIK_AUTH_TRUSTED_CALLERS",
                env_str("KLIK_AUTH_TRUSTED_CALLERS", DEFAULT_TRUSTED_CALLERS, env),
            ),
            email_verification_seconds=env_float("KLIK_EMAIL_VERIFICATION_TTL_SECONDS", DAY, env),
            verification_resend_seconds=env_float("KLIK_VERIFICATION_RESEND_SECONDS", 60.0, env),
            password_reset_seconds=env_float("KLIK_PASSWORD_RESET_TTL_SECONDS", 1800.0, env),
            reset_email_throttle=throttle("KLIK_RESET_MAX_REQUESTS", 3),
            reset_address_throttle=throttle("KLIK_RESET_ADDRESS_MAX_REQUESTS", 10),
            sealer=kek.from_env(env),
            require_2fa_roles=frozenset(
                role.strip()
                for role in env_str("KLIK_REQUIRE_2FA_ROLES", "", env).split(",")
                if role.strip()
            ),
            two_factor_challenge_seconds=env_float("KLIK_2FA_CHALLENGE_TTL_SECONDS", 300.0, env),
            email_change_seconds=env_float("KLIK_EMAIL_CHANGE_TTL_SECONDS", DAY, env),
            oidc=OidcOptions.from_env(env),
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
        if self.mail.smtp.tls not in SMTP_TLS_MODES:
            raise ConfigError(f"KLIK_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}")
        if not self.mail.public_url.startswith(("http://", "https://")):
            raise ConfigError("KLIK_PUBLIC_URL must be an http(s) URL")
        if self.mail.poll_seconds <= 0 or self.mail.retry.cap_seconds <= 0:
            raise ConfigError(
                "KLIK_MAIL_POLL_SECONDS and KLIK_MAIL_RETRY_MAX_SECONDS must be positive"
            )
        if self.email_verification_seconds <= 0 or self.verification_resend_seconds < 0:
            raise ConfigError(
                "KLIK_EMAIL_VERIFICATION_TTL_SECONDS must be positive and "
                "KLIK_VERIFICATION_RESEND_SECONDS not negative"
            )
        if self.password_reset_seconds <= 0:
            raise ConfigError("KLIK_PASSWORD_RESET_TTL_SECONDS must be positive")
        unknown = self.require_2fa_roles - set(ROLES)
        if unknown:
            raise ConfigError(
                f"KLIK_REQUIRE_2FA_ROLES: {', '.join(sorted(unknown))} is not a role "
                f"({', '.join(ROLES)})"
            )
        if self.two_factor_challenge_seconds <= 0 or self.email_change_seconds <= 0:
            raise ConfigError(
                "KLIK_2FA_CHALLENGE_TTL_SECONDS and KLIK_EMAIL_CHANGE_TTL_SECONDS must be positive"
            )
        for policy in (
            self.account_throttle,
            self.address_throttle,
            self.reset_email_throttle,
            self.reset_address_throttle,
        ):
            try:
                policy.check()
            except ValueError as error:
                raise ConfigError(f"KLIK_LOGIN_* settings: {error}") from None
