"""Gateway configuration from `KLIK_GATEWAY_*` variables (README § Configuration)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.policy import CREDENTIALS, READ, WRITE
from gateway.ratelimit import Rate
from kit.config import (
    GATEWAY_PORT,
    SERVICE_PORTS,
    env_float,
    env_int,
    env_str,
    nats_url,
    service_address,
)

# Route class -> (variable, default): requests per period per client (see gateway.policy).
RATE_VARIABLES: Mapping[str, tuple[str, str]] = {
    CREDENTIALS: ("KLIK_GATEWAY_RATE_AUTH", "30/60"),
    READ: ("KLIK_GATEWAY_RATE_READ", "1200/60"),
    WRITE: ("KLIK_GATEWAY_RATE_WRITE", "300/60"),
}


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    nats_url: str
    upstreams: Mapping[str, str]  # service name -> gRPC address (kit.rpc.target form)
    max_body_bytes: int
    grace_seconds: float  # how long a stopping gateway lets in-flight requests finish
    log_level: str
    timeout_seconds: float  # deadline of each upstream call
    cors_origins: tuple[str, ...]  # allowed browser origins; "*" allows any
    rate_limits: Mapping[str, Rate | None]  # route class -> rate (None: unlimited)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        origins = env_str("KLIK_GATEWAY_CORS_ORIGINS", "", env)
        return cls(
            host=env_str("KLIK_GATEWAY_HOST", "127.0.0.1", env),
            port=env_int("KLIK_GATEWAY_PORT", GATEWAY_PORT, env),
            nats_url=nats_url(env),
            upstreams={name: service_address(name, env) for name in SERVICE_PORTS},
            max_body_bytes=env_int("KLIK_GATEWAY_MAX_BODY_BYTES", 1024 * 1024, env),
            grace_seconds=env_float("KLIK_GRACE_SECONDS", 10.0, env),
            log_level=env_str("KLIK_LOG_LEVEL", "INFO", env).upper(),
            timeout_seconds=env_float("KLIK_GATEWAY_TIMEOUT_SECONDS", 10.0, env),
            cors_origins=tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip()),
            rate_limits={
                route_class: Rate.parse(variable, env_str(variable, default, env))
                for route_class, (variable, default) in RATE_VARIABLES.items()
            },
        )
