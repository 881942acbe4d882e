"""Gateway configuration from `KLIK_GATEWAY_*` variables (README § Configuration)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.config import (
    GATEWAY_PORT,
    SERVICE_PORTS,
    env_float,
    env_int,
    env_str,
    nats_url,
    service_address,
)


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    nats_url: str
    upstreams: Mapping[str, str]  # service name -> gRPC address (kit.rpc.target form)
    max_body_bytes: int
    grace_seconds: float  # how long a stopping gateway lets in-flight requests finish
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        return cls(
            host=env_str("KLIK_GATEWAY_HOST", "127.0.0.1", env),
            port=env_int("KLIK_GATEWAY_PORT", GATEWAY_PORT, env),
            nats_url=nats_url(env),
            upstreams={name: service_address(name, env) for name in SERVICE_PORTS},
            max_body_bytes=env_int("KLIK_GATEWAY_MAX_BODY_BYTES", 1024 * 1024, env),
            grace_seconds=env_float("KLIK_GRACE_SECONDS", 10.0, env),
            log_level=env_str("KLIK_LOG_LEVEL", "INFO", env).upper(),
        )
