"""Configuration from environment variables, with documented defaults.

Every knob is a `KLIK_*` variable; README § Configuration lists them. Per-service
settings carry the service name in the variable (`KLIK_AUTH_PORT`), so one
environment file can configure the whole suite and the gateway finds each service
by the same variables the service listens on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Default gRPC and Prometheus ports of each service (README § Ports).
SERVICE_PORTS: Mapping[str, int] = {
    "auth": 50051,
    "wallet": 50052,
    "generation": 50053,
    "content": 50054,
}
METRICS_PORTS: Mapping[str, int] = {
    "auth": 9101,
    "wallet": 9102,
    "generation": 9103,
    "content": 9104,
}
GATEWAY_PORT = 8080
# The embedded stack runs its own nats-server; 4322 keeps clear of a system NATS on 4222.
EMBEDDED_NATS_PORT = 4322


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def env_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    value = (os.environ if env is None else env).get(name, "").strip()
    return value or default


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    raw = env_str(name, "", env)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    raw = env_str(name, "", env)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def var_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded stack keeps its SQLite files, NATS store and logs."""
    return Path(env_str("KLIK_VAR_DIR", "var", env)).resolve()


def service_keys_dir(env: Mapping[str, str] | None = None) -> Path:
    """Service identity keys (kit.identity); the embedded stack creates them here."""
    return Path(env_str("KLIK_SERVICE_KEYS_DIR", str(var_dir(env) / "keys"), env)).resolve()


def nats_url(env: Mapping[str, str] | None = None) -> str:
    return env_str("KLIK_NATS_URL", f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}", env)


def service_address(service: str, env: Mapping[str, str] | None = None) -> str:
    """host:port where callers reach `service`; `KLIK_<SVC>_ADDR` may list several,
    comma-separated (replicas)."""
    prefix = f"KLIK_{service.upper()}"
    default = f"{env_str(prefix + '_HOST', '127.0.0.1', env)}:" + str(
        env_int(prefix + "_PORT", SERVICE_PORTS[service], env)
    )
    return env_str(prefix + "_ADDR", default, env)


@dataclass(frozen=True)
class ServiceSettings:
    """What every gRPC service process reads at start-up."""

    name: str
    host: str
    port: int
    metrics_port: int  # 0 disables the Prometheus endpoint
    database_url: str
    nats_url: str
    var_dir: Path
    grace_seconds: float  # how long a draining server lets in-flight calls finish
    log_level: str
    service_keys_dir: Path  # this service's <name>.key and every service's <name>.pub
    token_issuer: str  # `iss` of access tokens (auth signs, everyone verifies)
    token_audience: str  # `aud` of access tokens
    peers: Mapping[str, str]  # where to reach every klik service (kit.rpc targets)
    # How long an access token lives (auth signs them so; every service keeps a
    # deleted user's tokens revoked that long) and the clock skew allowed on `exp`.
    access_token_ttl_seconds: float = 900.0
    token_leeway_seconds: float = 30.0
    # The database pool of one replica (PostgreSQL): connections kept open, and how
    # many more may be opened under load. All kept open by default: an overflow
    # connection is closed as soon as it is returned, so a busy replica paid a TCP
    # and authentication handshake per transaction beyond the pool.
    db_pool_size: int = 20
    db_max_overflow: int = 0

    def __post_init__(self) -> None:
        if self.db_pool_size < 1 or self.db_max_overflow < 0:
            raise ConfigError("the DB pool size must be at least 1 and its overflow 0 or more")

    @classmethod
    def from_env(cls, name: str, env: Mapping[str, str] | None = None) -> ServiceSettings:
        prefix = f"KLIK_{name.upper()}"
        var = var_dir(env)
        return cls(
            name=name,
            host=env_str(prefix + "_HOST", "127.0.0.1", env),
            port=env_int(prefix + "_PORT", SERVICE_PORTS.get(name, 0), env),
            metrics_port=env_int(prefix + "_METRICS_PORT", METRICS_PORTS.get(name, 0), env),
            database_url=env_str(
                prefix + "_DATABASE_URL", f"sqlite+aiosqlite:///{var}/{name}.db", env
            ),
            nats_url=nats_url(env),
            var_dir=var,
            grace_seconds=env_float("KLIK_GRACE_SECONDS", 10.0, env),
            log_level=env_str("KLIK_LOG_LEVEL", "INFO", env).upper(),
            service_keys_dir=service_keys_dir(env),
            token_issuer=env_str("KLIK_TOKEN_ISSUER", "klik-auth", env),
            token_audience=env_str("KLIK_TOKEN_AUDIENCE", "klik", env),
            peers={peer: service_address(peer, env) for peer in SERVICE_PORTS},
            access_token_ttl_seconds=env_float("KLIK_ACCESS_TOKEN_TTL_SECONDS", 900.0, env),
            token_leeway_seconds=env_float("KLIK_TOKEN_LEEWAY_SECONDS", 30.0, env),
            db_pool_size=env_int(prefix + "_DB_POOL_SIZE", 20, env),
            db_max_overflow=env_int(prefix + "_DB_MAX_OVERFLOW", 0, env),
        )
